"""Embedding backends: ONNX Runtime gives the vectors torch gives, exports once, and repairs a broken cache."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from retrieval.embed import Embedder, resolve_model
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
    assert len(list(embedder.onnx_cache.glob(f"*/{GRAPH_FILE}"))) == 1


def test_a_model_folder_changed_since_its_export_gives_the_vectors_its_files_now_give(
    embedder: Embedder, tmp_path: Path
):
    """A later process opens the export its folder's files were recorded with, without loading the model; an
    edited file (here a default prompt added) means loading the model again, not the old record."""
    folder = shutil.copytree(resolve_model(embedder.model_name), tmp_path / "model")
    plain = np.asarray(Embedder(str(folder), onnx_cache=embedder.onnx_cache).embed_documents(TEXTS))
    settings = folder / "config_sentence_transformers.json"
    settings.write_text(json.dumps({**json.loads(settings.read_text()), "prompts": {"query": "query: "},
                                    "default_prompt_name": "query"}))  # fmt: skip
    reference = np.asarray(Embedder(str(folder), backend="torch").embed_documents(TEXTS))
    for _ in range(2):  # the first loads the edited folder and records it, the second opens that record
        prompted = np.asarray(Embedder(str(folder), onnx_cache=embedder.onnx_cache).embed_documents(TEXTS))
        assert np.min(np.sum(prompted * reference, axis=1)) > 0.9999
        assert np.max(np.sum(prompted * plain, axis=1)) < 0.999, "the prompt changed the vectors"


def _truncate(graph: Path) -> None:
    graph.write_bytes(b"half a file")  # a disk that filled up, a copy cut short


def _move_aside(graph: Path) -> None:
    graph.rename(graph.with_name("model.onnx.old"))  # by hand: the folder is left, with other files in it


@pytest.mark.parametrize("damage", [_truncate, _move_aside])
def test_broken_cache_entry_is_exported_again(
    embedder: Embedder, torch_vectors: np.ndarray, tmp_path: Path, caplog: pytest.LogCaptureFixture, damage
):
    embedder.embed_query("load it")
    cache = tmp_path / "onnx"
    shutil.copytree(embedder.onnx_cache, cache)
    (graph,) = cache.glob(f"*/{GRAPH_FILE}")
    damage(graph)
    repaired = Embedder(embedder.model_name, onnx_cache=cache)
    repaired._model = embedder._model
    with caplog.at_level(logging.INFO, logger="retrieval.onnx_encoder"):
        vectors = np.asarray(repaired.embed_documents(TEXTS))
    assert repaired.active_backend == "onnx" and EXPORTING in caplog.text
    assert np.min(np.sum(vectors * torch_vectors, axis=1)) > 0.9999
    assert not [p for p in cache.iterdir() if p.name.startswith(".export-")]  # no staging folder left behind


def test_unusable_cache_folder_falls_back_to_torch_or_says_why(
    embedder: Embedder, torch_vectors: np.ndarray, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    not_a_folder = tmp_path / "onnx"
    not_a_folder.write_text("a file where the cache folder should be")
    fallback = Embedder(embedder.model_name, onnx_cache=not_a_folder)
    fallback._model = embedder._model
    with caplog.at_level(logging.WARNING, logger="retrieval.embed"):
        vectors = np.asarray(fallback.embed_documents(TEXTS))
    assert fallback.active_backend == "torch" and "runs in torch" in caplog.text
    assert np.min(np.sum(vectors * torch_vectors, axis=1)) > 0.9999
    insisting = Embedder(embedder.model_name, backend="onnx", onnx_cache=not_a_folder)
    insisting._model = embedder._model
    with pytest.raises(ValueError, match="cannot run in ONNX Runtime: cannot write the exported model"):
        insisting.embed_query("x")


def test_a_model_default_prompt_is_applied_by_both_backends(embedder: Embedder):
    from sentence_transformers import SentenceTransformer

    prompted = SentenceTransformer(resolve_model(embedder.model_name), device="cpu")
    prompted.prompts, prompted.default_prompt_name = {"query": "query: "}, "query"
    vectors = {}
    for backend in ("torch", "onnx"):
        configured = Embedder(embedder.model_name, backend=backend, onnx_cache=embedder.onnx_cache)
        configured._model = prompted
        vectors[backend] = np.asarray(configured.embed_documents(TEXTS))
    plain = np.asarray(embedder.embed_documents(TEXTS))
    assert np.min(np.sum(vectors["onnx"] * vectors["torch"], axis=1)) > 0.9999
    assert np.max(np.sum(vectors["onnx"] * plain, axis=1)) < 0.999, "the prompt changed the vectors"


def test_onnx_backend_needs_a_cache_folder():
    with pytest.raises(ValueError, match="needs a folder"):
        Embedder("all-MiniLM-L6-v2", backend="onnx")
