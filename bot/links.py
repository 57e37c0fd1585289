"""Pure rules for links in text the model or people wrote: which links go to the wiki, and how one that goes
elsewhere is shown as text. A link outside the wiki's hosts is never rendered as a link: an answer steered by a
poisoned source or correction must not send people to a look-alike login page."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from urllib.parse import urlsplit

# a URL with a scheme, or starting with www.; it ends at whitespace, quotes, backticks, <, > and Slack's "|"
_BARE_URL = r"(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>\"'`|]+"
URL = re.compile(_BARE_URL, re.IGNORECASE)
# a whole Markdown link, or a URL (after the "](" of a Markdown link whose label a cut at a space left out)
_LINK = re.compile(
    rf"\[(?P<label>[^\]\n]*)\]\(\s*(?P<target>[^)\s]+)\s*\)|(?P<opening>\]\()?(?P<url>{_BARE_URL})", re.IGNORECASE
)
URL_TRAILER = re.compile(r"[.,;:!?)\]}*_~]+$")  # punctuation after a URL is not part of it
_HOST = re.compile(r"[a-z0-9._-]+|[0-9a-f:.]+")  # a name or an IP address (urlsplit lower-cases it)
HOLD_LIMIT = 2000  # characters a stream holds back at most while it waits for the end of a word


def host_of(url: str) -> str | None:
    """The lower-case host of a URL ("www.x.com/a" counts as http), without port or user; None if it has none."""
    try:
        host = urlsplit(url if "://" in url else f"http://{url}").hostname
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    return host if host and _HOST.fullmatch(host) else None


def wiki_hosts(urls: Iterable[str]) -> frozenset[str]:
    return frozenset(host for url in urls if (host := host_of(url)))


def is_wiki_link(url: str, hosts: Collection[str]) -> bool:
    return url.lower().startswith(("http://", "https://")) and host_of(url) in hosts


def links(text: str) -> list[str]:
    """Every URL in `text`: bare, in a Markdown link, or in a Slack link <url|label>."""
    return [URL_TRAILER.sub("", m.group()) for m in URL.finditer(text)]


def external_links(text: str, hosts: Collection[str]) -> list[str]:
    """The URLs in `text` that do not go to one of the wiki's `hosts`."""
    return [url for url in links(text) if not is_wiki_link(url, hosts)]


def as_text(url: str) -> str:
    """A URL as text no client turns into a link: no scheme, the host's last dot bracketed (evil[.]example)."""
    rest = url.split("://", 1)[-1]
    host_end = len(rest) if (end := re.search(r"[/?#]", rest)) is None else end.start()
    host = rest[:host_end]
    dot = host.rfind(".")
    return (host[:dot] + "[.]" + host[dot + 1 :] if dot >= 0 else host) + rest[host_end:]


def unlink_external(markdown: str, hosts: Collection[str]) -> str:
    """Markdown with each link outside `hosts` as text: "[label](url)" becomes "label (url as text)", a bare
    URL its `as_text` form. Links to the wiki stay as they are. Works on any cut of a text at whitespace."""

    def unlink(m: re.Match[str]) -> str:
        if (target := m.group("target")) is not None:
            return m.group() if is_wiki_link(target, hosts) else f"{m.group('label')} ({as_text(target)})"
        url = URL_TRAILER.sub("", m.group("url"))
        if is_wiki_link(url, hosts):
            return m.group()
        opening = "] (" if m.group("opening") else ""  # a Markdown link's end, its label cut off: no link either
        return opening + as_text(url) + m.group("url")[len(url) :]

    return _LINK.sub(unlink, markdown)


class StreamLinkGuard:
    """Unlinks external links in text that arrives in pieces (a streamed answer): it holds back the last word
    until a whitespace ends it, so a URL cut between two pieces is still seen whole."""

    def __init__(self, hosts: Collection[str]) -> None:
        self.hosts = hosts
        self._held = ""

    def feed(self, piece: str) -> str:
        """What of the text so far can be shown now (maybe ""), links outside the wiki as text."""
        text = self._held + piece
        end = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t")) + 1
        if end == 0 and len(text) >= HOLD_LIMIT:
            end = len(text)
        self._held = text[end:]
        return unlink_external(text[:end], self.hosts)

    def flush(self) -> str:
        """The text held back, at the end of the stream."""
        held, self._held = self._held, ""
        return unlink_external(held, self.hosts)
