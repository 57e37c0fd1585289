"""Reading a wiki export into `SourcePage`s: a folder of Markdown/HTML files, or a MediaWiki XML dump.

A file that cannot be read is reported (path and reason) and skipped; a source that cannot be read at
all raises `SourceError` before anything is changed in the index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import frontmatter
import mwparserfromhell
from bs4 import BeautifulSoup
from langchain_community.document_loaders import MWDumpLoader
from langchain_core.documents import Document
from markdownify import markdownify

from retrieval.models import SourcePage

MARKDOWN_SUFFIXES = {".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
DUMP_SUFFIXES = {".xml"}
_H1 = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


class SourceError(ValueError):
    """The source as a whole cannot be ingested (missing, empty, unreadable)."""


@dataclass
class LoadedSource:
    root: str
    pages: list[SourcePage] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def page_url(base_url: str, path: str) -> str:
    """`base_url` with `{path}` filled in, or `path` appended to it."""
    quoted = quote(path, safe="/")
    if "{path}" in base_url:
        return base_url.replace("{path}", quoted)
    return f"{base_url.rstrip('/')}/{quoted}"


def load_source(path: Path, base_url: str | None = None) -> LoadedSource:
    path = path.expanduser()
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    if path.is_dir():
        return load_folder(path, base_url)
    if path.suffix.lower() in DUMP_SUFFIXES:
        return load_mediawiki_dump(path, base_url)
    raise SourceError(f"{path}: expected a folder of Markdown/HTML files or a MediaWiki XML dump (.xml)")


def load_folder(root: Path, base_url: str | None) -> LoadedSource:
    root = root.resolve()
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in MARKDOWN_SUFFIXES | HTML_SUFFIXES
    )
    if not files:
        raise SourceError(f"{root}: no Markdown (.md) or HTML (.html) files found")
    loaded = LoadedSource(root=str(root))
    for file in files:
        key = file.relative_to(root).with_suffix("").as_posix()
        try:
            loaded.pages.append(_read_file(file, key, base_url))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            loaded.failures.append((str(file), _reason(exc)))
    return loaded


def _read_file(file: Path, key: str, base_url: str | None) -> SourcePage:
    raw = file.read_bytes()
    if b"\x00" in raw:
        raise ValueError("binary file, not text")
    text = raw.decode("utf-8")
    if file.suffix.lower() in HTML_SUFFIXES:
        title, url, body = _parse_html(text)
    else:
        title, url, body = _parse_markdown(text)
    if not body.strip():
        raise ValueError("no text content")
    title = title or _first_h1(body) or file.stem.replace("-", " ").replace("_", " ").capitalize()
    if not url:
        if base_url is None:
            raise ValueError("the page has no URL: give --base-url or a `url` in its front matter")
        url = page_url(base_url, key)
    return SourcePage(page_key=key, title=title.strip(), url=url, body=body, source_path=str(file))


def _parse_markdown(text: str) -> tuple[str | None, str | None, str]:
    try:
        post = frontmatter.loads(text)
    except Exception as exc:  # YAML errors come in several types
        raise ValueError(f"bad front matter: {exc}") from exc
    title, url = post.metadata.get("title"), post.metadata.get("url")
    return (str(title) if title else None, str(url) if url else None, post.content)


def _parse_html(text: str) -> tuple[str | None, str | None, str]:
    soup = BeautifulSoup(text, "html.parser")
    canonical = soup.find("link", rel="canonical")
    url = canonical.get("href") if canonical else None
    title = soup.title.get_text(strip=True) if soup.title else None
    for tag in soup(["script", "style", "nav", "header", "footer"]):
        tag.decompose()
    content = soup.find("main") or soup.body or soup
    # markdownify keeps headings, lists and tables, so one Markdown splitter serves every format
    body = markdownify(str(content), heading_style="ATX")
    return title, str(url) if url else None, body


def _first_h1(body: str) -> str | None:
    match = _H1.search(body)
    return match.group(1) if match else None


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return str(exc) or type(exc).__name__


class _SectionedDumpLoader(MWDumpLoader):
    """MWDumpLoader strips `== headings ==` to plain text; keep them as Markdown headings for chunking."""

    def _load_single_page_from_dump(self, page) -> Document:  # type: ignore[no-untyped-def]
        revisions = list(page)
        code = mwparserfromhell.parse(revisions[-1].text or "")
        parts = []
        for section in code.get_sections(flat=True, include_lead=True):
            headings = section.filter_headings(recursive=False)
            if headings:
                heading = headings[0]
                parts.append(f"{'#' * heading.level} {heading.title.strip_code().strip()}")
                section.remove(heading)
            parts.append(section.strip_code(normalize=True, collapse=True, keep_template_params=False).strip())
        return Document(page_content="\n\n".join(p for p in parts if p), metadata={"source": page.title})


def load_mediawiki_dump(dump: Path, base_url: str | None) -> LoadedSource:
    if base_url is None:
        raise SourceError(f"{dump}: a MediaWiki dump carries no page URLs; give --base-url")
    loader = _SectionedDumpLoader(dump, namespaces=[0], skip_redirects=True, stop_on_error=False)
    loaded = LoadedSource(root=str(dump.resolve()))
    try:
        for doc in loader.lazy_load():
            title = doc.metadata["source"]
            path = title.replace(" ", "_")
            if not doc.page_content.strip():
                loaded.failures.append((f"{dump}#{title}", "no text content"))
                continue
            loaded.pages.append(
                SourcePage(
                    page_key=title,
                    title=title,
                    url=page_url(base_url, path),
                    body=doc.page_content,
                    source_path=f"{dump}#{title}",
                )
            )
    except Exception as exc:  # mwxml raises XML, KeyError or ValueError variants for a broken dump
        raise SourceError(f"{dump}: not a readable MediaWiki XML dump ({_reason(exc)})") from exc
    if not loaded.pages:
        raise SourceError(f"{dump}: the dump holds no article pages")
    return loaded
