"""Plain data passed between ingestion, storage and search."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from core.prompt import CitableChunk

SEARCH_MODES = ("hybrid", "vector", "text")  # both rankings fused, or one alone


def sha256(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


@dataclass(frozen=True)
class SourcePage:
    """One wiki page as read from its source, body in Markdown."""

    page_key: str
    title: str
    url: str
    body: str
    source_path: str

    @property
    def content_hash(self) -> str:
        return sha256(self.title, self.url, self.body)


@dataclass(frozen=True)
class Chunk:
    """A section (or part of one) of a page, ready to embed."""

    position: int
    section: str
    url: str
    text: str
    title: str

    @property
    def embedding_input(self) -> str:
        return embedding_input(self.title, self.section, self.text)

    @property
    def content_hash(self) -> str:
        return sha256(self.embedding_input)


def embedding_input(title: str, section: str, text: str) -> str:
    """What gets embedded: the heading context first, so a section is found by its page and heading too."""
    heading = f"{title} > {section}" if section else title
    return f"{heading}\n\n{text}"


@dataclass(frozen=True)
class SearchHit(CitableChunk):
    """A retrieved chunk with everything needed to cite it, and how search ranked it."""

    ranks: dict[str, int] = field(default_factory=dict)
    similarity: float | None = None  # cosine similarity to the question, when vector search found it

    def as_dict(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "page_id": self.page_id,
            "space": self.space,
            "title": self.title,
            "section": self.section,
            "url": self.url,
            "text": self.text,
            "score": self.score,
            "ranks": self.ranks,
            "similarity": self.similarity,
        }


@dataclass(frozen=True)
class RelevanceLabel:
    """A person's word that `url` (a section of page `page_id`) was the right source for `question`."""

    feedback_id: int
    question: str
    page_id: int
    url: str
