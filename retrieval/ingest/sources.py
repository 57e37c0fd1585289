"""Reading a wiki export into `SourcePage`s: a folder of Markdown/HTML files, or a MediaWiki XML dump.

A page that cannot be read is a failure (path and reason) and keeps its indexed version. A page with nothing to
index (no text, a redirect) is skipped; one larger than the size limit is skipped and keeps its indexed version.
A source that cannot be read at all raises `SourceError` before anything is changed in the index.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from functools import partial
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import frontmatter
import mwparserfromhell
import mwxml
from bs4 import BeautifulSoup
from markdownify import markdownify
from mwparserfromhell.parser import ParserError

from retrieval.models import SourcePage

MARKDOWN_SUFFIXES = {".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
DUMP_SUFFIXES = {".xml"}
_H1 = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)
_REFRESH_URL = re.compile(r"url\s*=\s*['\"]?([^'\"]+)", re.IGNORECASE)  # content="0; url=..." of a meta refresh
_READ_ERRORS = (OSError, UnicodeDecodeError, ValueError, ParserError)  # a page that cannot be read: a failure


class SourceError(ValueError):
    """The source as a whole cannot be ingested (missing, empty, unreadable)."""


class _Skip(Exception):
    """A page with nothing to index, or too large to read: reported as skipped, not as a failure."""

    def __init__(self, reason: str, keep: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.keep = keep  # the page was not read: its indexed version stays


@dataclass
class LoadedSource:
    root: str
    pages: list[SourcePage] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    keep: set[str] = field(default_factory=set)  # page keys not read (failed, too large): their indexed version stays
    complete: bool = True  # every page of the source was listed, so an indexed page missing from it is gone

    def add(self, key: str, path: str, read: Callable[[], SourcePage]) -> None:
        """Add the page that `read` returns, or record why there is none."""
        try:
            self.pages.append(read())
        except _Skip as skip:
            self.skipped.append((path, skip.reason))
            if skip.keep:
                self.keep.add(key)
        except _READ_ERRORS as exc:
            self.failures.append((path, _reason(exc)))
            self.keep.add(key)


def page_url(base_url: str, path: str) -> str:
    """`base_url` with `{path}` filled in, or `path` appended to it."""
    quoted = quote(path, safe="/")
    if "{path}" in base_url:
        return base_url.replace("{path}", quoted)
    return f"{base_url.rstrip('/')}/{quoted}"


@dataclass(frozen=True)
class _Limits:
    max_page_bytes: int | None
    stop: threading.Event

    def check_size(self, size: int) -> None:
        if self.max_page_bytes is not None and size > self.max_page_bytes:
            raise _Skip(
                f"too large ({size / 1e6:.2g} MB, over WIKIBOT_INGEST_MAX_PAGE_MB = {self.max_page_bytes / 1e6:g})",
                keep=True,
            )


def load_source(
    path: Path,
    base_url: str | None = None,
    max_page_bytes: int | None = None,
    stop: threading.Event | None = None,
) -> LoadedSource:
    """Read every page at `path`; pages over `max_page_bytes` are skipped unread. Once `stop` is set, the pages
    read so far come back (as an incomplete source)."""
    path = path.expanduser()
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    limits = _Limits(max_page_bytes, stop or threading.Event())
    if path.is_dir():
        return load_folder(path, base_url, limits)
    if path.suffix.lower() in DUMP_SUFFIXES:
        return load_mediawiki_dump(path, base_url, limits)
    raise SourceError(f"{path}: expected a folder of Markdown/HTML files or a MediaWiki XML dump (.xml)")


def load_folder(root: Path, base_url: str | None, limits: _Limits) -> LoadedSource:
    root = root.resolve()
    files = sorted(p for p in root.rglob("*") if _is_page_file(p))
    if not files:
        raise SourceError(f"{root}: no Markdown (.md) or HTML (.html) files found")
    loaded = LoadedSource(root=str(root))
    for file in files:
        if limits.stop.is_set():
            loaded.complete = False
            break
        key = file.relative_to(root).with_suffix("").as_posix()
        loaded.add(key, str(file), partial(_read_file, file, key, base_url, limits))
    return loaded


def _is_page_file(path: Path) -> bool:
    """A Markdown/HTML file, or a broken symbolic link named like one (reported, not silently dropped)."""
    is_file = path.is_file() or (path.is_symlink() and not path.exists())
    return is_file and path.suffix.lower() in MARKDOWN_SUFFIXES | HTML_SUFFIXES


def _read_file(file: Path, key: str, base_url: str | None, limits: _Limits) -> SourcePage:
    if not file.exists():
        raise ValueError(f"broken symbolic link to {os.readlink(file)}")
    limits.check_size(file.stat().st_size)
    raw = file.read_bytes()
    if b"\x00" in raw:
        raise ValueError("binary file, not text")
    text = raw.decode("utf-8")
    if file.suffix.lower() in HTML_SUFFIXES:
        title, url, body, redirect = _parse_html(text)
    else:
        title, url, body, redirect = _parse_markdown(text)
    _check_text(body, redirect)
    title = title or _first_h1(body) or file.stem.replace("-", " ").replace("_", " ").capitalize()
    if not url:
        if base_url is None:
            raise ValueError("the page has no URL: give --base-url or a `url` in its front matter")
        url = page_url(base_url, key)
    return SourcePage(page_key=key, title=title.strip(), url=url, body=body, source_path=str(file))


def _check_text(body: str, redirect: str | None) -> None:
    if not body.strip():
        raise _Skip(f"redirect to {redirect}" if redirect else "no text")


def _parse_markdown(text: str) -> tuple[str | None, str | None, str, str | None]:
    """Title, URL, body and redirect target (`redirect_to`, as Jekyll's redirect pages have) of a Markdown page."""
    try:
        post = frontmatter.loads(text)
    except Exception as exc:  # YAML errors come in several types
        raise ValueError(f"bad front matter: {exc}") from exc
    title, url, redirect = (post.metadata.get(name) for name in ("title", "url", "redirect_to"))
    return (_text_or_none(title), _text_or_none(url), post.content, _text_or_none(redirect))


def _parse_html(text: str) -> tuple[str | None, str | None, str, str | None]:
    """Title, canonical URL, body (as Markdown) and redirect target (a meta refresh) of an HTML page."""
    soup = BeautifulSoup(text, "html.parser")
    canonical = soup.find("link", rel="canonical")
    refresh = soup.find("meta", attrs={"http-equiv": re.compile("^refresh$", re.IGNORECASE)})
    redirect = _REFRESH_URL.search(refresh.get("content", "")) if refresh else None
    title = soup.title.get_text(strip=True) if soup.title else None
    for tag in soup(["script", "style", "nav", "header", "footer"]):
        tag.decompose()
    content = soup.find("main") or soup.body or soup
    # markdownify keeps headings, lists and tables, so one Markdown splitter serves every format
    body = markdownify(str(content), heading_style="ATX")
    return title, _text_or_none(canonical.get("href") if canonical else None), body, redirect and redirect.group(1)


def _text_or_none(value: object) -> str | None:
    return str(value) if value else None


def _first_h1(body: str) -> str | None:
    match = _H1.search(body)
    return match.group(1) if match else None


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return str(exc) or type(exc).__name__


def _wikitext_to_markdown(wikitext: str) -> str:
    """Plain text of a wiki page, its `== headings ==` kept as Markdown headings for chunking."""
    parts = []
    for section in mwparserfromhell.parse(wikitext).get_sections(flat=True, include_lead=True):
        headings = section.filter_headings(recursive=False)
        if headings:
            heading = headings[0]
            parts.append(f"{'#' * heading.level} {heading.title.strip_code().strip()}")
            section.remove(heading)
        parts.append(section.strip_code(normalize=True, collapse=True, keep_template_params=False).strip())
    return "\n\n".join(p for p in parts if p)


def load_mediawiki_dump(dump: Path, base_url: str | None, limits: _Limits) -> LoadedSource:
    """The article pages (namespace 0) of a dump, from each page's last revision.

    Read with mwxml directly: langchain's MWDumpLoader logs and drops a page it cannot read, and a dump cut off
    in the middle ends its page list silently, so those pages would be deleted from the index.
    """
    if base_url is None:
        raise SourceError(f"{dump}: a MediaWiki dump carries no page URLs; give --base-url")
    loaded = LoadedSource(root=str(dump.resolve()))
    title = None  # of the page being read
    try:
        with dump.open(encoding="utf-8") as file:
            for page in mwxml.Dump.from_file(file).pages:
                if limits.stop.is_set():
                    loaded.complete = False
                    break
                title = page.title
                if page.namespace == 0:
                    last = None
                    for last in page:  # reads the page's XML: the dump may end in the middle
                        pass
                    loaded.add(title, f"{dump}#{title}", partial(_dump_page, dump, page, last, base_url, limits))
                title = None
    except Exception as exc:  # mwxml raises XML, KeyError or ValueError variants for a broken dump
        if not loaded.pages:
            raise SourceError(f"{dump}: not a readable MediaWiki XML dump ({_reason(exc)})") from exc
        # pages after the break are unknown: none may be deleted
        loaded.complete = False
        if title is not None:
            loaded.failures.append((f"{dump}#{title}", "the dump breaks off in this page"))
            loaded.keep.add(title)
        loaded.failures.append((str(dump), f"broken or cut off ({_reason(exc)}): later pages not read, none deleted"))
    if not (loaded.pages or loaded.skipped or loaded.failures):
        raise SourceError(f"{dump}: the dump holds no article pages")
    return loaded


def _dump_page(
    dump: Path, page: mwxml.Page, revision: mwxml.Revision | None, base_url: str, limits: _Limits
) -> SourcePage:
    if revision is None:
        raise ValueError("no <revision> in the dump")
    wikitext = revision.text or ""
    limits.check_size(len(wikitext.encode("utf-8")))
    body = "" if page.redirect else _wikitext_to_markdown(wikitext)
    _check_text(body, page.redirect)
    return SourcePage(
        page_key=page.title,
        title=page.title,
        url=page_url(base_url, page.title.replace(" ", "_")),
        body=body,
        source_path=f"{dump}#{page.title}",
    )
