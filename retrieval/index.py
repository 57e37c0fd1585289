"""The wiki index as one object: database, store, embedder and search, opened from the settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.config import Settings
from core.db import Database
from retrieval.embed import Embedder
from retrieval.retriever import WikiSearch
from retrieval.store import WikiStore

if TYPE_CHECKING:  # imported where used: searching needs neither (`wikibot search` starts faster)
    from retrieval.ingest.pipeline import Ingestor
    from retrieval.langchain_retriever import WikiRetriever


@dataclass
class WikiIndex:
    settings: Settings
    db: Database
    store: WikiStore
    embedder: Embedder
    search: WikiSearch

    @classmethod
    @asynccontextmanager
    async def open(
        cls, settings: Settings, *, db: Database | None = None, embedder: Embedder | None = None
    ) -> AsyncIterator[WikiIndex]:
        """Open on a new database pool, or on `db` when the caller already has one."""
        embedder = embedder or Embedder.from_settings(settings)
        if db is not None:
            yield cls._build(settings, db, embedder)
            return
        async with Database.open(settings) as opened:
            yield cls._build(settings, opened, embedder)

    @classmethod
    def _build(cls, settings: Settings, db: Database, embedder: Embedder) -> WikiIndex:
        store = WikiStore(db)
        return cls(settings, db, store, embedder, WikiSearch(store, embedder, settings))

    def ingestor(self, progress: bool = False) -> Ingestor:
        from retrieval.ingest.chunking import SectionChunker
        from retrieval.ingest.pipeline import Ingestor

        chunker = SectionChunker(self.settings.chunk_size, self.settings.chunk_overlap)
        return Ingestor(
            self.store,
            self.embedder,
            chunker,
            progress=progress,
            max_page_bytes=int(self.settings.ingest_max_page_mb * 1e6),
            max_delete_share=self.settings.ingest_max_delete_share,
        )

    def retriever(self, k: int | None = None, spaces: list[str] | None = None) -> WikiRetriever:
        from retrieval.langchain_retriever import WikiRetriever

        return WikiRetriever(search=self.search, k=k, spaces=spaces)
