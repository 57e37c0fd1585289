"""Pure feedback rules: which emoji rate an answer, whether a thread reply corrects it or comments, and when a
correction needs a reviewer.

The review rule: a correction its author confirmed enters training at once unless
- `external_link`: it links outside the wiki's hosts (a look-alike login page is the classic poisoning);
- `instructions`: it reads as instructions to the bot (ignore the sources or the wiki, a new role, log in or give a
  password);
- `contradicts_votes`: someone else's standing 👍 is on the answer it corrects (checked again at every snapshot);
- `given_before_review`: it came from the correction form before corrections were reviewed (migration 0005).
Then it waits for a reviewer (WIKIBOT_REVIEWERS) to approve it in the App Home (`reviews` says who may).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence

from bot.links import external_links

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
_INSTRUCTIONS = re.compile(
    r"\b(ignore|disregard|forget|override)\b[^.!?\n]{0,40}\b(sources?|wiki|instructions?|rules|system|prompt|above|"
    r"previous|citations?)\b"
    r"|\b(system prompt|you are now|from now on|act as|pretend (?:to be|you are)|new instructions?)\b"
    r"|\b(log ?in|sign ?in|enter|type|give|send|share|provide|confirm)\b[^.!?\n]{0,30}"
    r"\b(passwords?|passcodes?|credentials|mfa|2fa|one-time codes?|otp)\b",
    re.IGNORECASE,
)
REVIEW_REASONS = {  # what a reviewer and the author are told, per reason
    "external_link": "it links outside the wiki",
    "instructions": "it reads as instructions to the bot",
    "contradicts_votes": "others rated the answer it corrects as helpful",
    "given_before_review": "it was given before corrections were reviewed",
}


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
    else 'comment'. Only a guess: its author is asked before a correction counts."""
    words = _SLACK_MARKUP.sub(" ", text)  # user ids and links carry digits that are no facts
    restates = _NUMBER.search(words) and (not _THANKS.search(words) or _OBJECTION.search(words))
    return "correction" if _CORRECTION_HINTS.search(words) or restates else "comment"


def review_reasons(text: str, wiki_hosts: Collection[str]) -> list[str]:
    """Why a correction's text needs a reviewer before it is used for training (the module's rule); [] if not."""
    reasons = []
    if external_links(text, wiki_hosts):
        reasons.append("external_link")
    if _INSTRUCTIONS.search(text):
        reasons.append("instructions")
    return reasons


def describe_reasons(reasons: Sequence[str]) -> str:
    return "; ".join(REVIEW_REASONS.get(r, r) for r in reasons)


def reviews(user: str, channel: str | None, spaces: Collection[str], reviewers: Mapping[str, Sequence[str]]) -> bool:
    """Whether WIKIBOT_REVIEWERS makes `user` a reviewer of corrections of an answer in `channel` drawn from
    `spaces`: as a reviewer of everything ("*"), of that channel, or of one of those wiki spaces."""
    scopes = ["*", *([channel] if channel else []), *spaces]
    return any(user in reviewers.get(scope, ()) for scope in scopes)


def is_reviewer(user: str, reviewers: Mapping[str, Sequence[str]]) -> bool:
    return any(user in users for users in reviewers.values())
