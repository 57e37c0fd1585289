"""The one configuration object of wikibot: every setting comes from a `WIKIBOT_*` environment variable.

`wikibot config` prints the reference (name, default, help) generated from the fields below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "WIKIBOT_"
BUNDLED_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


class Settings(BaseSettings):
    """wikibot settings. Lists and mappings are given as JSON, e.g. `WIKIBOT_VLLM_URLS='["http://a:8000/v1"]'`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # --- storage -------------------------------------------------------------------------------
    data_dir: Path = Field(
        default=Path.home() / ".wikibot",
        description="Folder for the embedded PostgreSQL data, adapters and datasets; persists between runs.",
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (with pgvector). Unset: an embedded server is started in DATA_DIR/pgdata.",
    )
    log_level: str = Field(default="INFO", description="Logging level (DEBUG, INFO, WARNING, ERROR).")
    log_json: bool = Field(default=False, description="Write logs as JSON lines (for log collectors).")
    db_pool_size: int = Field(default=10, ge=1, description="Maximum connections in the database pool.")

    # --- retrieval -----------------------------------------------------------------------------
    embedding_model: str = Field(
        default=BUNDLED_EMBEDDING_MODEL,
        description="sentence-transformers model name or path; the default is bundled (offline). "
        "Changing it re-embeds the wiki on the next ingest.",
    )
    embedding_batch_size: int = Field(default=64, ge=1, description="Chunks embedded per batch.")
    chunk_size: int = Field(default=1200, ge=200, description="Largest chunk, in characters.")
    chunk_overlap: int = Field(default=150, ge=0, description="Characters shared by consecutive chunks of a section.")
    search_k: int = Field(default=6, ge=1, description="Chunks retrieved per question.")
    search_candidates: int = Field(
        default=40, ge=1, description="Candidates taken from each of vector and full-text search before fusion."
    )
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal rank fusion constant.")
    hnsw_ef_search: int = Field(default=100, ge=1, description="pgvector hnsw.ef_search (recall/speed trade-off).")

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir / "pgdata"


def settings_reference() -> list[dict[str, Any]]:
    """Every setting with its environment variable, default and help, for `wikibot config` and the README."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        rows.append(
            {
                "env": ENV_PREFIX + name.upper(),
                "default": "" if default is None else str(default),
                "help": field.description or "",
            }
        )
    return rows
