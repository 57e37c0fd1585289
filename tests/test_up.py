"""`wikibot up` starts on embedded defaults from a fresh data folder and says what is missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from training.vllm_server import free_port

pytestmark = pytest.mark.slow


def test_up_runs_on_embedded_defaults_and_names_what_is_missing(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WIKIBOT_", "SLACK_"))}
    env |= {"WIKIBOT_DATA_DIR": str(tmp_path / "data"), "WIKIBOT_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "up", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(1)
        else:
            pytest.fail("wikibot up did not become healthy")
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    assert "ingesting the sample wiki" in output
    assert "space 'hr': 9 added" in output
    assert "LLM: none configured. Set WIKIBOT_LLM_BASE_URL" in output
    assert "Slack: not configured. Set WIKIBOT_SLACK_BOT_TOKEN" in output
    assert (tmp_path / "data" / "pgdata" / "PG_VERSION").exists(), "embedded PostgreSQL keeps its data folder"
    assert proc.returncode == 130
