"""Hybrid search over the wiki index (its LangChain retriever is in retrieval/langchain_retriever.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from core.config import Settings
from retrieval.embed import Embedder
from retrieval.models import SEARCH_MODES, SearchHit
from retrieval.store import WikiStore, WordLimits


class WikiSearch:
    """Embeds the question and runs the hybrid query with the configured parameters."""

    def __init__(self, store: WikiStore, embedder: Embedder, settings: Settings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self._checked = False

    async def search(
        self, query: str, *, k: int | None = None, spaces: Sequence[str] | None = None, mode: str = "hybrid",
        earlier: str | None = None,
    ) -> list[SearchHit]:
        """The best chunks for `query`; `earlier`, the question asked before it in its thread, is searched with it
        too (store.hybrid_search)."""
        if mode not in SEARCH_MODES:
            raise ValueError(f"unknown search mode {mode!r}; use one of {', '.join(SEARCH_MODES)}")
        if not query.strip():
            return []
        if not self._checked:
            await self.store.check_embedding_model(self.embedder.model_name)
            self._checked = True
        # embedded while PostgreSQL runs the full-text query
        vector, in_thread = self._embedded(query, mode), None
        if earlier and earlier.strip():
            with_earlier = f"{earlier}\n{query}"
            in_thread = (with_earlier, self._embedded(with_earlier, mode))
        return await self.store.hybrid_search(
            query,
            vector,
            k=k or self.settings.search_k,
            candidates=max(self.settings.search_candidates, k or 0),
            rrf_k=self.settings.rrf_k,
            words=WordLimits(self.settings.fulltext_word_share, self.settings.fulltext_max_matches),
            per_page=self.settings.search_chunks_per_page,
            spaces=spaces,
            mode=mode,
            in_thread=in_thread,
            label_similarity=self.settings.search_label_similarity if self.settings.search_feedback else None,
            label_weight=self.settings.search_label_weight,
        )

    def _embedded(self, text: str, mode: str) -> asyncio.Task[list[float]] | None:
        """The text's embedding, computed while PostgreSQL runs the full-text query (None in text mode)."""
        return asyncio.create_task(asyncio.to_thread(self.embedder.embed_query, text)) if mode != "text" else None
