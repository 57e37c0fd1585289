"""Search learns from corrections: a source people named right for a question ranks higher for questions like it
(training/labels.py builds the labels, retrieval/store.py ranks by them), on the sample wiki in a real PostgreSQL.

The tests share the module's database and run in file order: each finds the corrections of those before it."""

import pytest

from core.answer_log import AnswerLog, AskContext, FeedbackLog, InteractionRecord
from core.prompt import Source
from retrieval.index import WikiIndex
from training.labels import refresh_labels
from wikibot.cli import main

ASKED = "how many days of bereavement leave do I get when a grandparent dies?"
ASKED_AGAIN = "how many bereavement days for a grandparent?"
UNRELATED = "what's the water damage sublimit on HomeShield Plus?"


@pytest.fixture(scope="module")
def database_url(sample_wiki_url: str) -> str:
    """The module's index holds the sample wiki."""
    return sample_wiki_url


async def pages(index: WikiIndex, question: str) -> list[int]:
    """Page ids in the order search ranks them (a page as its best chunk)."""
    return list(dict.fromkeys(h.page_id for h in await index.search.search(question, k=20)))


async def correct(index: WikiIndex, question: str, right_page: int, reasons: list[str]) -> int:
    """Log the bot's answer to `question` and a correction from the form that picks `right_page`'s source."""
    hits = await index.search.search(question)
    if right_page not in {h.page_id for h in hits}:
        hits = hits[:-1] + [h for h in await index.search.search(question, k=20) if h.page_id == right_page][:1]
    sources = [Source.numbered(n, hit) for n, hit in enumerate(hits, start=1)]
    interaction = await AnswerLog(index.db).log_interaction(InteractionRecord(
        AskContext(source="cli", user_id="U1"), question, [{"role": "user", "content": question}],
        [s.as_dict() for s in sources], "It is 3 days [1].", "answered", [1],
    ))  # fmt: skip
    n = next(s.n for s in sources if s.page_id == right_page)
    feedback = await FeedbackLog(index.db).save_modal_correction(
        interaction, "U2", "It is 5 days for a grandparent.", n, reasons, view_id=f"V{interaction}"
    )
    assert feedback is not None
    return feedback


async def test_a_corrected_source_ranks_first_for_the_question_asked_again_and_only_for_questions_like_it(
    index: WikiIndex,
):
    vectors = index.embedder.embed_documents([ASKED, ASKED_AGAIN])
    alike = sum(a * b for a, b in zip(*vectors, strict=True))
    assert alike >= index.settings.search_label_similarity, f"the two phrasings are only {alike:.2f} alike"
    before, unrelated_before = await pages(index, ASKED_AGAIN), await search_ids(index, UNRELATED)
    right = before[2]  # a page search put third: the correction says it is the right one

    await correct(index, ASKED, right, reasons=[])
    refreshed = await refresh_labels(index)

    assert (refreshed.corrections, refreshed.labels) == (1, 1)
    assert (await pages(index, ASKED_AGAIN))[0] == right
    assert (await pages(index, ASKED))[0] == right
    assert await search_ids(index, UNRELATED) == unrelated_before
    hit = next(h for h in await index.search.search(ASKED_AGAIN) if h.page_id == right)
    assert hit.ranks["feedback"] == 1  # the bot can tell why it is there


async def test_a_correction_counts_only_once_accepted_and_stops_counting_when_rejected(index: WikiIndex):
    question = "who approves a claim payment over the senior adjuster's authority?"
    before = await pages(index, question)
    right = before[3]
    feedback = await correct(index, question, right, reasons=["external_link"])  # waits for a reviewer

    await refresh_labels(index)
    assert await pages(index, question) == before

    assert await FeedbackLog(index.db).review(feedback, "UADMIN", "approved")
    await refresh_labels(index)
    assert (await pages(index, question))[0] == right

    async with index.db.connection() as conn:  # the correction is taken back (the reply deleted, or purged)
        await conn.execute("UPDATE feedback SET retracted_at = now() WHERE id = %s", (feedback,))
    await refresh_labels(index)
    assert await pages(index, question) == before


async def test_a_refresh_embeds_only_questions_not_labelled_before(index: WikiIndex, monkeypatch):
    embedded: list[str] = []  # what refreshes embed (searching embeds its question too: cleared before each)
    embed = index.embedder.embed_documents
    monkeypatch.setattr(index.embedder, "embed_documents", lambda texts: embedded.extend(texts) or embed(texts))
    labelled = (await pages(index, ASKED_AGAIN))[0]  # the first test's correction put it first
    before = (await index.store.labels()).keys()
    embedded.clear()
    assert (await refresh_labels(index)).labels == len(before) and embedded == []  # nothing new: nothing changes
    assert (await index.store.labels()).keys() == before

    question = "can I expense a taxi to the airport?"
    right = (await pages(index, question))[1]
    await correct(index, question, right, reasons=[])
    embedded.clear()
    await refresh_labels(index)
    assert embedded == [question]
    assert (await pages(index, question))[0] == right
    assert (await pages(index, ASKED_AGAIN))[0] == labelled  # its label kept its question's embedding


async def test_labels_of_a_deleted_page_go_with_it_and_search_can_leave_them_out(index: WikiIndex):
    labelled = (await pages(index, ASKED_AGAIN))[0]  # the first test's label put it first
    plain = index.settings.model_copy(update={"search_feedback": False})
    async with WikiIndex.open(plain, db=index.db, embedder=index.embedder) as without:
        assert (await pages(without, ASKED_AGAIN))[0] != labelled

    async with index.db.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM search_labels WHERE page_id = %s", (labelled,))
        assert (await cur.fetchone())[0] == 1
        await conn.execute("DELETE FROM pages WHERE id = %s", (labelled,))
        cur = await conn.execute("SELECT count(*) FROM search_labels WHERE page_id = %s", (labelled,))
        assert (await cur.fetchone())[0] == 0


async def search_ids(index: WikiIndex, question: str) -> list[int]:
    return [h.chunk_id for h in await index.search.search(question)]


def test_wikibot_labels_refreshes_them_and_says_how_many(index: WikiIndex, monkeypatch, capsys):
    """Two corrections stand; one's page was deleted above, so one label is left."""
    monkeypatch.setenv("WIKIBOT_DATABASE_URL", index.settings.database_url)
    monkeypatch.setenv("WIKIBOT_DATA_DIR", str(index.settings.data_dir))
    assert main(["labels"]) == 0
    assert "relevance labels: 1, from 2 accepted corrections" in capsys.readouterr().out
