from bot.prompt import Source, Turn, build_messages, clean_citations, cited_numbers, number_sources
from bot.render import MESSAGE_BLOCK_LIMIT, SECTION_LIMIT, answer_blocks, split_text, to_mrkdwn
from retrieval.models import SearchHit


def hit(i: int, text: str = "Five days.") -> SearchHit:
    return SearchHit(i, i, "hr", f"Page {i}", f"Sec {i}", f"https://w/p{i}#s", text, 1.0 / i)


def sources(n: int) -> list[Source]:
    return number_sources([hit(i) for i in range(1, n + 1)], 10_000)


def test_prompt_numbers_sources_and_puts_history_before_the_question():
    msgs = build_messages("How many days?", sources(2), [Turn("Q1", "A1 [1]")], company="Harborline")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert "Harborline" in msgs[0]["content"] and "[2]" in msgs[0]["content"]
    last = msgs[-1]["content"]
    assert last.index("[1] Page 1 › Sec 1\nURL: https://w/p1#s\nFive days.") < last.index("[2] Page 2")
    assert last.endswith("Question: How many days?")


def test_sources_are_cut_to_the_character_budget_but_never_empty():
    long = [hit(i, "x" * 400) for i in range(1, 6)]
    assert [s.n for s in number_sources(long, 1000)] == [1, 2]
    assert len(number_sources(long, 10)) == 1


def test_citations_to_missing_sources_are_dropped():
    text, cited = clean_citations("Five days [2]. Ten for spouses [7]. See [1, 9].", 3)
    assert text == "Five days [2]. Ten for spouses. See [1]."
    assert cited == [2, 1]
    assert cited_numbers("a [3][3] b [1,2]") == [3, 1, 2]


def test_mrkdwn_conversion_and_citation_links():
    out = to_mrkdwn("## Leave\n**Five** days, *paid* [1]. See [the form](https://f/x) & <HR>.\n- one", sources(1))
    assert out == (
        "*Leave*\n*Five* days, _paid_ <https://w/p1#s|[1]>. See <https://f/x|the form> &amp; &lt;HR&gt;.\n• one"
    )


def test_blocks_show_cited_sources_feedback_and_respect_limits():
    blocks = answer_blocks("Five days [1].", sources(1), interaction_id=42)
    types = [b["type"] for b in blocks]
    assert types == ["section", "context", "context_actions", "actions", "context"]
    assert "<https://w/p1#s|Page 1 › Sec 1>" in blocks[1]["elements"][0]["text"]
    buttons = blocks[2]["elements"][0]
    assert buttons["type"] == "feedback_buttons" and buttons["positive_button"]["value"] == "good:42"
    assert "correction" in blocks[-1]["elements"][0]["text"]
    huge = answer_blocks(("word " * 700 + "\n\n") * 60, [], interaction_id=1)
    assert len(huge) <= MESSAGE_BLOCK_LIMIT
    assert all(len(b["text"]["text"]) <= SECTION_LIMIT for b in huge if b["type"] == "section")
    assert all(len(p) <= 100 for p in split_text("abc " * 200, 100))
