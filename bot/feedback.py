"""Pure feedback rules: which emoji rate an answer, and whether a thread reply corrects it or comments."""

from __future__ import annotations

import re
from collections.abc import Sequence

_SKIN_TONE = re.compile(r"::skin-tone-\d$")
_SLACK_MARKUP = re.compile(r"<[^>]*>|:[a-z0-9_+-]+:")
# words that say the answer was wrong or give the right value; a reply with none of them is a comment
_CORRECTION_HINTS = re.compile(
    r"\b(wrong|incorrect|not (?:right|true|correct)|actually|should (?:be|say)|it(?:'s| is) (?:now|actually)|"
    r"correct (?:answer|one|page|source) is|outdated|out of date|changed|no longer|instead|mistake|"
    r"the right|see (?:the )?page|isn't|aren't|doesn't|don't|not \d)\b",
    re.IGNORECASE,
)
# a number restates a fact ("it is 12 days"), unless the reply thanks and does not object ("thanks, my 2 kids")
_NUMBER = re.compile(r"\d")
_THANKS = re.compile(r"\b(thanks|thank you|thx|cheers|helped|helpful|great|perfect|awesome|appreciated?)\b", re.I)
_OBJECTION = re.compile(r"\b(but|however|though)\b", re.IGNORECASE)


def rating_value(reaction: str, positive: Sequence[str], negative: Sequence[str]) -> int | None:
    """+1, -1, or None for emoji that are not ratings. Skin tones count as the base emoji."""
    name = _SKIN_TONE.sub("", reaction)
    if name in positive:
        return 1
    if name in negative:
        return -1
    return None


def classify_reply(text: str) -> str:
    """'correction' when the reply disputes or restates facts (wrong/actually/should be/a number not in thanks...),
    else 'comment'."""
    words = _SLACK_MARKUP.sub(" ", text)  # user ids and links carry digits that are no facts
    restates = _NUMBER.search(words) and (not _THANKS.search(words) or _OBJECTION.search(words))
    return "correction" if _CORRECTION_HINTS.search(words) or restates else "comment"
