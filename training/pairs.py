"""From logged answers and their feedback to DPO preference pairs. Pure: no I/O.

Rules (the README's "How feedback becomes training data" says the same for people):
- Only answers with status 'answered' and at least one source are used. Answers with identical logged
  prompts (a question asked again, same history and sources) are one prompt: its pairs use that
  `prompt_messages` exactly, and its id (`interaction_id`) is the first such answer's.
- Identical answer texts of a prompt are one answer. Its net rating, the sum of its users' votes, makes it
  preferred (> 0), rejected (< 0) or neither (0: a tie or conflict gives no signal).
- A correction is a preferred answer "as written": the user's text, not rewritten by an LLM (that keeps it
  deterministic, needs no LLM at training time, and 👍 answers teach the style). A correction outranks
  ratings: the corrected answer is rejected even if others gave it 👍. Of several corrections of a prompt
  the latest (highest id) is chosen; the others are not used, save that each still rejects the answer it
  corrected. It cites what the first of these rules gives, appended as " [n]" before the text's closing
  punctuation (`cite`); `as_written` applies them, and the stats count each rule (`corrections_<rule>`):
  1. `own_citations`: the valid [n] it has.
  2. `source_n`: the source the user picked in the correction form.
  3. A retrieved source the text points at (`pointed_source`): `linked` (it holds the source's URL, with or
     without the #fragment, bare or as a Slack link <url|label>), `quoted` (a run of QUOTE_WORDS words of
     the source's text, ignoring case and punctuation) or `named` (the page title and/or the section's own
     heading, as whole words, ignoring case; a name needs a word of 3+ letters that is no stop word). Of
     several, a link to the chunk (#fragment too) beats a link to its page, then a quote (the source with
     more of the quote first), then title and section named, then the title alone, then the section alone;
     among equals the best ranked (lowest n). So naming a page retrieved as several chunks cites its
     best-ranked chunk unless the section is named too.
  4. `similar`: the source most like the text (`similarity`: the share of the text's content words found in
     the source's title, section and text), if at least SIMILARITY_THRESHOLD and the text has
     MIN_CONTENT_WORDS content words; ties go to the best ranked.
  5. `uncited`: none. The correction is still used, citing nothing: what the user wrote is the point of
     it, and a source guessed (such as the ones the corrected answer cited, often the wrong ones) would
     teach a wrong citation. It gets no distractors (they need a citation to move).
  The source is found in the text as written; what is cited is the text in the answer's voice
  (`answer_voice`): sentences that only disagree ("Actually, that's not right.") or only point at a page
  ("It's on the Leave policy page.") are the user talking to the bot, not an answer, and are dropped.
- Pairs the model could have written: a correction that cites a source also makes each answer it rejects
  preferred in its own words, citing that source instead of what it cited (`recited`), against itself as it
  was and against its distractors (kinds 'correction' and 'distractor'). The pair differs only in the
  citation, so it moves which source is cited without teaching another voice. Not for an answer that copies
  the source block, says the wiki does not cover it, or has fewer than MIN_CONTENT_WORDS content words.
- Never the source text itself: a correction citing a source is also preferred to a copy of that source's
  block as the prompt lists it (header, URL line and text; kind 'distractor'), the way a model learns to copy.
- Each preferred answer gets up to `max_distractors` rejected copies whose citations all point at one
  retrieved source it does not cite (best ranked first): they teach which document to cite. One that cites
  no source gets none.
- Pairs: every preferred answer with every rejected one (kind 'correction' or 'rating', after where the
  chosen answer came from) and with its distractors ('distractor'); identical pairs are merged. A
  rejected answer with nothing preferred beside it makes no pair (counted in the stats); comments make none.
- Choosing, not position: retrieval ranks the right page first for most questions (94% on the sample wiki),
  so pairs with the logged prompts alone teach "cite [1]". Each pair whose chosen answer cites a source gets
  up to `source_orders` copies (DEFAULT_SOURCE_ORDERS: 1) of the same kind and prompt id (so in the same
  split) whose prompt lists the same sources in another order (`reorder`): the chosen answer's first cited
  source moves to a position other than [1] and its own (the k-th copy: the k-th such position after one a
  hash of the prompt picks), the others keep their order, the sources are numbered [1..n] anew, and every
  [n] of the chosen and rejected answers follows its source ("[1, 3]" and "[1][3]" too; numbers no source
  has stay). Only the "Sources:" block of the last message changes: it is cut at the headers of the logged
  sources and written again with `core.prompt.format_sources`; a prompt it would not rebuild exactly gets no
  copies. Nor does a chosen answer citing no source, a prompt with one source, or one whose chosen answer
  cites [2] of two (its only other order puts it first). The stats count the copies (`reordered`).
- Held-out split by prompt: `split_of(interaction_id)` hashes the prompt's id, so no prompt is in both
  splits, and a prompt stays in its split from one snapshot to the next.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import unquote

from core.answer_log import FeedbackItem, LoggedAnswer
from core.prompt import CITATION, CITATION_RUN, Source, cited_numbers, clean_citations, format_sources
from training.answer_quality import NOT_COVERED, echoes

PairKind = Literal["correction", "rating", "distractor"]
Split = Literal["train", "heldout"]
CitationRule = Literal["own_citations", "source_n", "linked", "quoted", "named", "similar", "uncited"]
PAIR_KINDS: tuple[PairKind, ...] = ("correction", "rating", "distractor")
SPLITS: tuple[Split, ...] = ("train", "heldout")
CITATION_RULES: tuple[CitationRule, ...] = (
    "own_citations", "source_n", "linked", "quoted", "named", "similar", "uncited",
)
DEFAULT_MAX_DISTRACTORS = 2
DEFAULT_SOURCE_ORDERS = 1  # copies of a pair with its prompt's sources in another order (see the module's rules)
STATS = (  # what `build_pairs` counts, pairs or not; corrections_<rule>: how the chosen corrections got a source
    "answers", "answers_skipped", "prompts", "rated_up", "rated_down", "tied",
    "corrections", "corrections_superseded", "rejected_unpaired", "comments", "pairs_merged",
    "reordered", "recited",
    *(f"corrections_{rule}" for rule in CITATION_RULES),
)
# A quote is a run of this many words of a source: long enough to be copied, not just said alike. Look-alike
# pages share such runs too (the sample wiki's pages share 98 of 8 words), so of several sources quoted the one
# with more of the quote's runs is cited.
QUOTE_WORDS = 8
# A correction that names, links or quotes no source cites the most similar one if it shares at least this share
# of the correction's content words. Why 0.5: on corrections written against sample wiki chunks (the tests have
# them) a paraphrase shares 0.56-0.89 with its chunk, a correction on a topic the wiki lacks 0.22 at most.
SIMILARITY_THRESHOLD = 0.5
MIN_CONTENT_WORDS = 3  # fewer ("No, 3 days.") is too little to tell sources apart
# Words that say nothing about which source is meant; content words are the other words of 3+ letters.
STOP_WORDS = frozenset("""
    the and for are but not nor you your with this that these those from have has had was were will would
    can could should does did its our out who whom what when where which why how there their they them then
    than also only just into onto about over under all any some each per via yes yeah nope isn aren wasn don
    doesn didn here more most less very too much many
    wrong correct incorrect actually answer bot wikibot wiki page pages section says said see look
    check source sources cite link please thanks thank instead
""".split())

# a run of adjacent citations, as core.prompt writes and reads them: "[2]", "[1, 3]", "[1][3]"
_LISTED_HEADER = re.compile(r"\n\n\[\d{1,3}\] [^\n]*\nURL: ")  # a source's header, after a blank line
_SOURCES_START, _QUESTION_START = "Sources:\n\n", "\n\nQuestion: "  # around core.prompt's source block
_END_PUNCTUATION = re.compile(r"[.!?]+$")
_WORD = re.compile(r"[^\W_]+")  # words for names, quotes and similarity: letters and digits, any script
_URL = re.compile(r"https?://[^\s<>|\"]+")  # bare, or inside a Slack link <url> / <url|label>
_URL_TRAILER = re.compile(r"[.,;:!?)\]}'\"]+$")  # punctuation after a bare URL is not part of it
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"[ \t]+([.,;:!?])")
# "It's on the Leave policy page.", "See the Parking section." : the user pointing, not answering
_POINTER = re.compile(
    r"^(?:(?:it|this|that)(?:'s| is)\s+(?:on|in|under|at)\s+|(?:see|check|look at|read)\s+)(?:the\s+)?"
    r"[^.!?\d]{0,80}\b(?:page|section|article|doc)\W*$", re.IGNORECASE,
)
# A sentence of only these words disagrees and says nothing else ("Actually, that's not right.", "No.")
DISAGREEING = frozenset("""
    actually no nope not that thats this it is isn s t wrong incorrect right correct quite true the answer bot
    wikibot sorry but well hmm what you said
""".split())


@dataclass(frozen=True)
class PreferencePair:
    interaction_id: int  # the prompt's id: its first logged answer
    prompt: list[dict[str, str]]
    chosen: str
    rejected: str
    kind: PairKind
    feedback_ids: tuple[int, ...]

    def to_trl(self) -> dict[str, list[dict[str, str]]]:
        return trl_record(self.prompt, self.chosen, self.rejected)


@dataclass(frozen=True)
class PairSet:
    pairs: list[PreferencePair]
    stats: dict[str, int]  # every key of STATS
    interaction_ids: tuple[int, ...]  # answers whose prompt, text or feedback went into a pair
    feedback_ids: tuple[int, ...]  # feedback that went into a pair


@dataclass
class _Answer:
    """A distinct answer text of a prompt with the feedback on every logged copy of it."""

    text: str
    votes: list[FeedbackItem] = field(default_factory=list)
    corrections: list[FeedbackItem] = field(default_factory=list)

    @property
    def evidence(self) -> tuple[int, ...]:
        return tuple(sorted(f.feedback_id for f in self.votes + self.corrections))


@dataclass(frozen=True)
class _Candidate:
    text: str
    origin: PairKind
    evidence: tuple[int, ...]


def trl_record(prompt: list[dict[str, str]], chosen: str, rejected: str) -> dict[str, list[dict[str, str]]]:
    """A pair in TRL's conversational preference format (explicit prompt)."""
    return {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def split_of(interaction_id: int, fraction: float) -> Split:
    """'heldout' for about `fraction` of prompt ids, always the same ones (a hash, not Python's `hash`)."""
    digest = hashlib.sha256(f"wikibot-split:{interaction_id}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") < fraction * 2**64 else "train"


def build_pairs(
    answers: Iterable[LoggedAnswer],
    feedback: Iterable[FeedbackItem],
    max_distractors: int = DEFAULT_MAX_DISTRACTORS,
    source_orders: int = DEFAULT_SOURCE_ORDERS,
) -> PairSet:
    """The preference pairs the feedback gives, deduplicated, in prompt order (see the module's rules).

    Each prompt's pairs come first in its logged source order, then their copies in other orders.
    """
    stats: Counter[str] = Counter()
    by_answer: dict[int, list[FeedbackItem]] = defaultdict(list)
    for item in feedback:
        by_answer[item.interaction_id].append(item)
    prompts: dict[tuple[tuple[tuple[str, str], ...], ...], list[LoggedAnswer]] = {}
    for answer in sorted(answers, key=lambda a: a.interaction_id):
        if answer.status != "answered" or not answer.sources:
            stats["answers_skipped"] += 1
            continue
        key = tuple(tuple(sorted(m.items())) for m in answer.prompt_messages)  # identical prompts, one key
        prompts.setdefault(key, []).append(answer)
    stats["answers"] = sum(len(group) for group in prompts.values())
    stats["prompts"] = len(prompts)

    pairs: list[PreferencePair] = []
    for group in prompts.values():  # a prompt's id is its own: pairs of two prompts never merge
        merged: dict[tuple[str, str], PreferencePair] = {}
        for pair in _prompt_pairs(group, by_answer, max_distractors, stats):
            key = (pair.chosen, pair.rejected)
            if key in merged:
                ids = tuple(sorted(set(merged[key].feedback_ids) | set(pair.feedback_ids)))
                merged[key] = replace(merged[key], feedback_ids=ids)
                stats["pairs_merged"] += 1
            else:
                merged[key] = pair
        pairs += merged.values()
        # distinct pairs give distinct copies: an order renumbers both answers one to one
        pairs += _reordered_copies(group[0], list(merged.values()), source_orders, stats)

    answer_of = {f.feedback_id: f.interaction_id for items in by_answer.values() for f in items}
    feedback_ids = sorted({i for pair in pairs for i in pair.feedback_ids})
    interaction_ids = {pair.interaction_id for pair in pairs} | {answer_of[i] for i in feedback_ids}
    return PairSet(pairs, {k: stats[k] for k in STATS}, tuple(sorted(interaction_ids)), tuple(feedback_ids))


def _prompt_pairs(
    group: list[LoggedAnswer],
    by_answer: dict[int, list[FeedbackItem]],
    max_distractors: int,
    stats: Counter[str],
) -> Iterator[PreferencePair]:
    first = group[0]
    numbers = [int(s["n"]) for s in first.sources]
    texts: dict[str, _Answer] = {}
    corrections: list[tuple[FeedbackItem, LoggedAnswer]] = []
    for answer in group:
        entry = texts.setdefault(answer.answer, _Answer(answer.answer))
        for item in by_answer.get(answer.interaction_id, ()):
            if item.kind == "rating" and item.value:
                entry.votes.append(item)
            elif item.kind == "correction" and item.text and item.text.strip():
                entry.corrections.append(item)
                corrections.append((item, answer))
            elif item.kind == "comment":
                stats["comments"] += 1

    preferred: list[_Candidate] = []
    rejected: list[_Candidate] = []
    if corrections:
        item, answer = max(corrections, key=lambda c: c[0].feedback_id)
        text, rule = as_written(item, answer.sources)
        preferred.append(_Candidate(text, "correction", (item.feedback_id,)))
        stats["corrections"] += 1
        stats[f"corrections_{rule}"] += 1
        stats["corrections_superseded"] += len(corrections) - 1
    for entry in texts.values():
        net = sum(v.value or 0 for v in entry.votes)
        if entry.votes:
            stats["rated_up" if net > 0 else "rated_down" if net < 0 else "tied"] += 1
        if entry.corrections or net < 0:
            rejected.append(_Candidate(entry.text, "rating", entry.evidence))
        elif net > 0:
            preferred.append(_Candidate(entry.text, "rating", entry.evidence))
    if not preferred:
        stats["rejected_unpaired"] += len(rejected)
        return

    prompt_id, prompt = first.interaction_id, first.prompt_messages
    preferred_texts = {p.text for p in preferred}
    for chosen in preferred:
        for worse in rejected:
            if worse.text != chosen.text:
                ids = tuple(sorted(set(chosen.evidence) | set(worse.evidence)))
                yield PreferencePair(prompt_id, prompt, chosen.text, worse.text, chosen.origin, ids)
        for wrong in distractors(chosen.text, numbers, max_distractors):
            if wrong not in preferred_texts:
                yield PreferencePair(prompt_id, prompt, chosen.text, wrong, "distractor", chosen.evidence)
    correction = preferred[0] if corrections else None
    cited = [n for n in cited_numbers(correction.text) if n in numbers] if correction else []
    listed = listed_sources(prompt, first.sources) if cited else None
    if correction is None or not cited or listed is None:
        return
    block = format_sources([listed[cited[0] - 1]])  # never the source text itself
    yield PreferencePair(prompt_id, prompt, correction.text, block, "distractor", correction.evidence)
    for worse in rejected:  # the rejected answers in their own words, citing the corrected source
        own = recited(worse.text, cited, listed)
        if own is None or own in preferred_texts or own == worse.text:
            continue
        stats["recited"] += 1
        ids = tuple(sorted(set(correction.evidence) | set(worse.evidence)))
        yield PreferencePair(prompt_id, prompt, own, worse.text, "correction", ids)
        for wrong in distractors(own, numbers, max_distractors):
            if wrong not in preferred_texts:
                yield PreferencePair(prompt_id, prompt, own, wrong, "distractor", ids)


def _reordered_copies(
    first: LoggedAnswer, pairs: list[PreferencePair], source_orders: int, stats: Counter[str]
) -> Iterator[PreferencePair]:
    """Up to `source_orders` copies of each of a prompt's pairs, its sources in other orders (the module's rules)."""
    listed = listed_sources(first.prompt_messages, first.sources) if source_orders > 0 and pairs else None
    if listed is None or len(listed) < 2:
        return
    seed = _prompt_hash(first.prompt_messages)
    for pair in pairs:
        for order in source_orders_for(pair.chosen, len(listed), seed, source_orders):
            copy = reorder(pair, listed, order)
            if copy.prompt != pair.prompt:  # two identical source blocks swapped: nothing moved
                stats["reordered"] += 1
                yield copy


def listed_sources(prompt: Sequence[dict[str, str]], sources: Sequence[dict[str, Any]]) -> list[Source] | None:
    """The prompt's numbered sources, with their text as the prompt lists it; None unless they rebuild it exactly.

    The last message's source block is cut at the logged sources' headers ("[n] label" and "URL: url" lines, as
    `core.prompt.format_sources` writes them): the logged dicts may lack their text (a snapshot reads it only
    for corrected answers), the prompt has it as the model saw it.
    """
    if not prompt or not sources or [int(s["n"]) for s in sources] != list(range(1, len(sources) + 1)):
        return None
    content = prompt[-1].get("content", "")
    end = content.rfind(_QUESTION_START)
    if not content.startswith(_SOURCES_START) or end < 0:
        return None
    block = content[len(_SOURCES_START) : end]
    # every field but those format_sources writes is a placeholder: the sources are only ever formatted again
    empty = [Source(n=int(s["n"]), chunk_id=0, page_id=0, space="", title=str(s.get("title") or ""),
                    section=str(s.get("section") or ""), url=str(s.get("url") or ""), text="", score=0.0)
             for s in sources]  # fmt: skip
    headers = [format_sources([s]) for s in empty]  # "[n] label\nURL: url\n" (the text is empty)
    if not block.startswith(headers[0]):
        return None
    starts = [0]
    for header in headers[1:]:
        at = block.find("\n\n" + header, starts[-1] + len(headers[len(starts) - 1]))
        if at < 0:
            return None
        starts.append(at + 2)
    ends = [at - 2 for at in starts[1:]] + [len(block)]
    listed = [replace(s, text=block[at + len(h) : stop]) for s, h, at, stop in zip(empty, headers, starts, ends)]
    if any(_LISTED_HEADER.search(f"\n\n{s.text}") for s in listed):  # a source the log lacks, or an odd text
        return None
    return listed if format_sources(listed) == block else None


def source_orders_for(chosen: str, n_sources: int, seed: int, count: int) -> list[tuple[int, ...]]:
    """Up to `count` other orders of sources 1..n_sources (old numbers in their new order) for a chosen answer.

    Its first cited source goes to a position other than 1 and its own, from the one `seed` picks on; the other
    sources keep their order. None if it cites no source.
    """
    cited = [n for n in cited_numbers(chosen) if 1 <= n <= n_sources]
    if not cited or count <= 0:
        return []
    first = cited[0]
    positions = [p for p in range(2, n_sources + 1) if p != first]
    orders = []
    for k in range(min(count, len(positions))):
        order = [n for n in range(1, n_sources + 1) if n != first]
        order.insert(positions[(seed + k) % len(positions)] - 1, first)
        orders.append(tuple(order))
    return orders


def reorder(pair: PreferencePair, listed: Sequence[Source], order: Sequence[int]) -> PreferencePair:
    """`pair` with its prompt listing the sources in `order` (old numbers), renumbered, and its answers' citations
    following their sources."""
    new_number = {old: new for new, old in enumerate(order, start=1)}
    by_number = {s.n: s for s in listed}
    block = format_sources([replace(by_number[old], n=new) for new, old in enumerate(order, start=1)])
    last = pair.prompt[-1]
    question = last["content"][last["content"].rfind(_QUESTION_START) :]
    prompt = [*pair.prompt[:-1], {**last, "content": _SOURCES_START + block + question}]
    return replace(pair, prompt=prompt, chosen=renumber_citations(pair.chosen, new_number),
                   rejected=renumber_citations(pair.rejected, new_number))  # fmt: skip


def renumber_citations(text: str, new_number: dict[int, int]) -> str:
    """`text` with each cited number n (in "[n]", "[n, m]", "[n][m]") replaced by new_number[n] where it has one."""

    def renumbered(match: re.Match[str]) -> str:
        return re.sub(r"\d+", lambda d: str(new_number.get(int(d.group()), d.group())), match.group())

    return CITATION.sub(renumbered, text)


def _prompt_hash(prompt: Sequence[dict[str, str]]) -> int:
    text = json.dumps(list(prompt), ensure_ascii=False, sort_keys=True)
    return int.from_bytes(hashlib.sha256(f"wikibot-order:{text}".encode()).digest()[:8], "big")


def as_written(correction: FeedbackItem, sources: Sequence[dict[str, Any]]) -> tuple[str, CitationRule]:
    """A correction in the bot's format, citing the source the module's rules give, and the rule that gave it.

    `sources`: the corrected answer's, as logged (n, title, section, url, text; n from 1 in rank order).
    """
    n_sources = len(sources)
    text, cited = clean_citations(correction.text or "", n_sources)
    if cited:
        return answer_voice(text), "own_citations"
    if correction.source_n is not None and 1 <= correction.source_n <= n_sources:
        return cite(answer_voice(text), [correction.source_n]), "source_n"
    pointed = pointed_source(text, sources)
    if pointed is not None:
        n, rule = pointed
        return cite(answer_voice(text), [n]), rule
    n = most_similar(text, sources)
    if n is not None:
        return cite(answer_voice(text), [n]), "similar"
    return answer_voice(text), "uncited"


def answer_voice(text: str) -> str:
    """`text` without the sentences (citing nothing) that only disagree or only point at a page; all of it if
    nothing else is left."""
    sentences = _SENTENCE_BREAK.split(text.strip())
    kept = [s for s in sentences if cited_numbers(s) or not (_only_disagrees(s) or _POINTER.match(s))]
    return " ".join(kept) if kept else text.strip()


def _only_disagrees(sentence: str) -> bool:
    words = _words(sentence)
    return bool(words) and all(w in DISAGREEING for w in words)


def recited(answer: str, numbers: list[int], listed: Sequence[Source]) -> str | None:
    """The model's own answer citing `numbers` instead of what it cited; None where it is no answer to cite (a
    copy of the source block, "not covered", fewer than MIN_CONTENT_WORDS content words)."""
    bare = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", CITATION_RUN.sub("", answer)).strip()
    bare = re.sub(r"[ \t]{2,}", " ", bare)
    if len(_content_words(bare)) < MIN_CONTENT_WORDS or NOT_COVERED.search(bare):
        return None
    if echoes(answer, [s.as_dict() for s in listed]):
        return None
    return cite(bare, numbers)


def pointed_source(text: str, sources: Sequence[dict[str, Any]]) -> tuple[int, CitationRule] | None:
    """The source `text` links, quotes or names (rule 3 of the module's), and how; None if none."""
    words = _words(text)
    padded = f" {' '.join(words)} "
    links = {_normal_url(m.group()) for m in _URL.finditer(html.unescape(text))}
    pages = {url.split("#", 1)[0] for url in links}
    quotes = {tuple(words[i : i + QUOTE_WORDS]) for i in range(len(words) - QUOTE_WORDS + 1)}
    best: tuple[tuple[int, int, int], CitationRule] | None = None  # ((strength, -quoted runs, n): least wins, rule)
    for source in sources:
        url = _normal_url(str(source.get("url") or ""))
        headings = re.split(r"\s*[>›]\s*", str(source.get("section") or ""))
        title_named = _named(str(source.get("title") or ""), padded)
        section_named = _named(headings[-1], padded)  # the section's own heading, not its parents'
        runs = _quoted_runs(quotes, str(source.get("text") or "")) if quotes else 0
        if url and url in links:
            found: tuple[int, CitationRule] = (0, "linked")
        elif url and url.split("#", 1)[0] in pages:
            found = (1, "linked")
        elif runs:
            found = (2, "quoted")
        elif title_named or section_named:
            found = (3 if title_named and section_named else 4 if title_named else 5, "named")
        else:
            continue
        key = (found[0], -runs if found[1] == "quoted" else 0, int(source["n"]))
        if best is None or key < best[0]:
            best = (key, found[1])
    return (best[0][2], best[1]) if best else None


def similarity(text: str, source: dict[str, Any]) -> float:
    """The share of `text`'s content words (3+ letters, no stop word) found in the source's title, section, text."""
    content = _content_words(text)
    if not content:
        return 0.0
    found = set(_words(" ".join(str(source.get(key) or "") for key in ("title", "section", "text"))))
    return len(content & found) / len(content)


def most_similar(text: str, sources: Sequence[dict[str, Any]]) -> int | None:
    """The source most like `text` (the best ranked of equals) if like enough (rule 4 of the module's), else None."""
    if len(_content_words(text)) < MIN_CONTENT_WORDS or not sources:
        return None
    score, n = max((similarity(text, s), -int(s["n"])) for s in sources)
    return -n if score >= SIMILARITY_THRESHOLD else None


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _content_words(text: str) -> set[str]:
    return {w for w in _words(text) if len(w) >= 3 and w.isalpha() and w not in STOP_WORDS}


def _named(name: str, padded_words: str) -> bool:
    """Whether `name` (with a content word) occurs as whole words in the text whose words are `padded_words`."""
    words = _words(name)
    return bool(_content_words(name)) and f" {' '.join(words)} " in padded_words


def _quoted_runs(quotes: set[tuple[str, ...]], source_text: str) -> int:
    """How many of the text's runs of QUOTE_WORDS words (`quotes`) the source's text has."""
    words = _words(source_text)
    return len(quotes & {tuple(words[i : i + QUOTE_WORDS]) for i in range(len(words) - QUOTE_WORDS + 1)})


def _normal_url(url: str) -> str:
    """A URL as compared: unescaped, no trailing punctuation or slash, percent-decoded, case-folded."""
    url = _URL_TRAILER.sub("", html.unescape(url.strip()))
    page, hash_, fragment = unquote(url).partition("#")
    return (page.rstrip("/") + hash_ + fragment).casefold()


def cite(text: str, numbers: list[int]) -> str:
    """`text` with `[n, m]` added at its end, before the closing punctuation: "Five days [2]."."""
    marker = f" [{', '.join(map(str, numbers))}]"
    end = _END_PUNCTUATION.search(text)
    if end is None:
        return text + marker
    return text[: end.start()].rstrip() + marker + end.group()


def distractors(text: str, source_numbers: list[int], limit: int) -> list[str]:
    """`text` citing, instead of its sources, one source it does not cite; for the first `limit` such."""
    cited = set(cited_numbers(text))
    if not cited & set(source_numbers):
        return []
    others = [n for n in source_numbers if n not in cited][:limit]
    return [CITATION_RUN.sub(f"[{n}]", text) for n in others]
