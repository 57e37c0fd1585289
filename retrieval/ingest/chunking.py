"""Section-aware chunking: Markdown headings become the section path and the URL anchor."""

from __future__ import annotations

import re
import unicodedata

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from retrieval.models import Chunk, SourcePage

_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
_TEMPLATE_TAG = re.compile(r"{%-?.*?-?%}|{{.*?}}", re.DOTALL)  # site-generator tags left in wiki exports


def anchor(heading: str) -> str:
    """The anchor most wiki renderers (GitHub, MkDocs, Jekyll) give a heading."""
    text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[^\w\s-]", "", text).strip()
    return re.sub(r"\s+", "-", text)


class SectionChunker:
    """Splits a page by headings, then long sections by paragraphs/sentences, keeping the heading path."""

    def __init__(self, chunk_size: int = 1200, chunk_overlap: int = 150) -> None:
        self._sections = MarkdownHeaderTextSplitter(headers_to_split_on=_HEADERS, strip_headers=True)
        self._pieces = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)

    def split(self, page: SourcePage) -> list[Chunk]:
        body = _TEMPLATE_TAG.sub("", page.body)
        chunks: list[Chunk] = []
        for section in self._sections.split_text(body):
            headings = [section.metadata[key] for _, key in _HEADERS if key in section.metadata]
            if headings and headings[0].strip().lower() == page.title.strip().lower():
                headings = headings[1:]  # the page title repeated as its first heading is no section
            url = f"{page.url}#{anchor(headings[-1])}" if headings else page.url
            for piece in self._pieces.split_text(section.page_content):
                if piece.strip():
                    chunks.append(
                        Chunk(
                            position=len(chunks),
                            section=" > ".join(headings),
                            url=url,
                            text=piece.strip(),
                            title=page.title,
                        )
                    )
        return chunks
