"""From retrieved chunks to the prompt's numbered sources. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from core.prompt import Source
from retrieval.models import SearchHit


def source_of(n: int, hit: SearchHit) -> Source:
    return Source.numbered(n, hit)


def number_sources(hits: Sequence[SearchHit], max_chars: int) -> list[Source]:
    """Number the hits in rank order, keeping as many as fit in `max_chars` of text (at least one)."""
    sources: list[Source] = []
    used = 0
    for hit in hits:
        if sources and used + len(hit.text) > max_chars:
            break
        used += len(hit.text)
        sources.append(source_of(len(sources) + 1, hit))
    return sources
