"""The wiki search as a LangChain retriever (langchain_core's retriever machinery takes seconds to import: only
code that uses it imports this module)."""

from __future__ import annotations

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from retrieval.models import SearchHit
from retrieval.retriever import WikiSearch


def hit_to_document(hit: SearchHit) -> Document:
    return Document(page_content=hit.text, metadata={k: v for k, v in hit.as_dict().items() if k != "text"})


class WikiRetriever(BaseRetriever):
    """LangChain retriever: documents carry title, section, url, chunk_id and score in their metadata."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    search: WikiSearch
    k: int | None = None
    spaces: list[str] | None = None

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        hits = await self.search.search(query, k=self.k, spaces=self.spaces)
        return [hit_to_document(hit) for hit in hits]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        raise NotImplementedError("WikiRetriever is async: use `await retriever.ainvoke(query)`")
