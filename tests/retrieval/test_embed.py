"""Embedding backends: ONNX Runtime gives the vectors torch gives, exports once, and repairs a broken cache."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from retrieval.embed import Embedder
from retrieval.onnx_encoder import GRAPH_FILE

EXPORTING = "exporting the embedding model to ONNX"
TEXTS = [
    "How do I file a windshield claim?",
    "Parental leave",
    "Which team handles commercial property claims above the large-loss threshold, and who signs off on them?",
    "VPN access for contractors is requested through the IT service desk with a manager's approval.",
    "PTO",
]


@pytest.fixture(scope="module")
def torch_vectors(embedder: Embedder) -> np.ndarray:
    reference = Embedder(embedder.model_name, backend="torch")
    reference._model = embedder._model  # the same loaded weights
    return np.asarray(reference.embed_documents(TEXTS))


def test_cpu_default_is_onnx_with_the_vectors_torch_gives(embedder: Embedder, torch_vectors: np.ndarray):
    assert embedder.active_backend == "onnx"
    batched = np.asarray(Embedder(embedder.model_name, batch_size=2, onnx_cache=embedder.onnx_cache).embed_documents(TEXTS))
    one_by_one = np.asarray([embedder.embed_query(text) for text in TEXTS])
    for vectors in (batched, one_by_one):  # batches of unequal lengths are padded and put back in input order
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert np.min(np.sum(vectors * torch_vectors, axis=1)) > 0.9999


def test_export_happens_once_per_model_weights(embedder: Embedder, caplog: pytest.LogCaptureFixture):
    embedder.embed_query("load it")
    with caplog.at_level(logging.INFO, logger="retrieval.onnx_encoder"):
        again = Embedder("/another/name/for/the/same/weights", onnx_cache=embedder.onnx_cache)
        again._model = embedder._model
        assert again.active_backend == "onnx"
    assert EXPORTING not in caplog.text
    assert len([p for p in embedder.onnx_cache.iterdir() if not p.name.startswith(".")]) == 1


def test_broken_cache_entry_is_exported_again(
    embedder: Embedder, torch_vectors: np.ndarray, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    embedder.embed_query("load it")
    cache = tmp_path / "onnx"
    shutil.copytree(embedder.onnx_cache, cache)
    (graph,) = cache.glob(f"*/{GRAPH_FILE}")
    graph.write_bytes(b"half a file")  # a disk that filled up, a copy cut short
    repaired = Embedder(embedder.model_name, onnx_cache=cache)
    repaired._model = embedder._model
    with caplog.at_level(logging.INFO, logger="retrieval.onnx_encoder"):
        vectors = np.asarray(repaired.embed_documents(TEXTS))
    assert "cannot be loaded" in caplog.text and EXPORTING in caplog.text
    assert np.min(np.sum(vectors * torch_vectors, axis=1)) > 0.9999
    assert not [p for p in cache.iterdir() if p.name.startswith(".export-")]  # no staging folder left behind


def test_onnx_backend_needs_a_cache_folder():
    with pytest.raises(ValueError, match="needs a folder"):
        Embedder("all-MiniLM-L6-v2", backend="onnx")
