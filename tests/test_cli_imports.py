"""The command line imports only what a command needs: `wikibot --help`, `search` and `ask` never import torch or
transformers (seconds of start-up for every call), once the embedding model has been exported to ONNX."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import Settings
from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from retrieval.sample import SAMPLE_BASE_URL, SAMPLE_WIKI
from tests.conftest import ROOT

HEAVY = ("torch", "transformers", "sentence_transformers")
# runs the command in this process, then prints the heavy packages it imported as the last line
RUN = f"""
import json, sys
from wikibot.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("\\n" + json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & {set(HEAVY)!r})))
"""


@pytest.fixture(scope="module")
async def data_dir(index: WikiIndex, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HR pages indexed, and a data folder holding the embedding model's export, as after a first ingest."""
    await index.ingestor().ingest(SAMPLE_WIKI / "pages" / "hr", "hr", f"{SAMPLE_BASE_URL}hr/")
    data = tmp_path_factory.mktemp("data")
    shutil.copytree(index.embedder.onnx_cache, Settings(data_dir=data).onnx_dir)  # the export, not made again
    Embedder.from_settings(Settings(data_dir=data)).embed_query("the model loaded by its name records its export")
    return data


def imported_by(args: list[str], settings: Settings, data_dir: Path) -> tuple[str, list[str]]:
    """What `wikibot ARGS` prints, and the heavy packages it imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WIKIBOT_", "SLACK_"))}
    env |= {
        "PYTHONPATH": str(ROOT),
        "WIKIBOT_DATA_DIR": str(data_dir),
        "WIKIBOT_DATABASE_URL": settings.database_url or "",
        "WIKIBOT_LLM_BASE_URL": "http://127.0.0.1:9/v1",  # refuses connections: `ask` answers with sources
    }
    done = subprocess.run(
        [sys.executable, "-c", RUN, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    output, _, last = done.stdout.rstrip().rpartition("\n")
    return output + done.stderr, json.loads(last)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--help"], "usage: wikibot"),
        (["search", "bereavement leave for a grandparent"], "Bereavement Leave"),
        (["ask", "how many days of bereavement leave for a grandparent?"], "Bereavement Leave"),
    ],
    ids=["help", "search", "ask"],
)
def test_commands_do_not_import_torch_or_transformers(
    args: list[str], expected: str, settings: Settings, data_dir: Path
):
    output, heavy = imported_by(args, settings, data_dir)
    assert expected in output, output
    assert heavy == [], f"wikibot {args[0]} imported {', '.join(heavy)}"
