"""Whole training cycles: logged corrections -> snapshot -> real DPO training -> gate -> hot swap into vLLM.

The tests share one database and run in order: a promoted adapter, a rejected one, a killed run, the CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from core.config import Settings
from core.db import Database
from tests.conftest import ROOT
from tests.support.preference_pairs import log_corrected_answers, wiki_answers
from training import cli as commands
from training.answer_quality import AnswerMetrics, decide_answers
from training.cycle import run_cycle
from training.datasets import build_snapshot
from core.registry import AdapterRegistry, training_lock

pytestmark = pytest.mark.slow

FEW_STEPS = {"train_epochs": 0.5}  # enough to produce an adapter when the test is not about its quality


@pytest.fixture(scope="module")
async def logged(db: Database) -> Database:
    """20 answers the bot gave, each corrected by a user: 170 pairs (corrections, distractors, the source's block,
    the bot's answers recited with the right source, and copies with the sources in another order)."""
    await log_corrected_answers(db, wiki_answers(20))
    return db


async def served(vllm_url: str) -> set[str]:
    async with httpx.AsyncClient(timeout=30) as client:
        return {m["id"] for m in (await client.get(f"{vllm_url}/models")).json()["data"]}


async def test_a_cycle_skips_while_another_holds_the_lock(logged: Database, training_settings: Settings):
    async with training_lock(logged) as taken:
        assert taken
        report = await run_cycle(training_settings, logged, force=True)
    assert report.status == "busy" and "in progress" in report.message
    assert await AdapterRegistry(logged).list() == []


async def test_a_cycle_trains_gates_and_promotes(logged: Database, training_settings: Settings, vllm_url: str):
    report = await run_cycle(training_settings.model_copy(update={"train_epochs": 2.0}), logged)

    assert report.status == "promoted", report.summary()
    assert (report.adapter, report.previous, report.new_pairs) == ("wiki-v1", None, 170), "with sources reordered"
    assert report.candidate["accuracy"] >= report.baseline["accuracy"]  # type: ignore[index]
    assert report.candidate["mean_margin"] > report.baseline["mean_margin"]  # type: ignore[index]
    active = await AdapterRegistry(logged).active()
    assert active is not None and active.name == "wiki-v1" and active.dataset_id == report.dataset_id
    assert set(active.metrics) == {"dataset_id", "train", "heldout", "baseline", "gate", "canary"}
    assert len(active.metrics["canary"]) == 3, "held-out prompts every server had to answer as trained"
    assert active.metrics["baseline"]["model"] == "base" and active.metrics["gate"].startswith("passed")
    assert (Path(active.path) / "adapter_config.json").is_file()
    assert "wiki-v1" in await served(vllm_url)


async def test_a_rejected_adapter_leaves_the_active_one(logged: Database, training_settings: Settings, vllm_url: str):
    strict = training_settings.model_copy(update={"gate_min_accuracy_delta": 2.0, **FEW_STEPS})
    manual = await build_snapshot(logged, 0.2)  # `wikibot pairs build` by hand: not trained on, so it goes
    report = await run_cycle(strict.model_copy(update={"train_keep_datasets": 1}), logged)
    assert report.status == "skipped" and report.new_pairs == 0, "no new feedback since the last dataset"
    async with logged.connection() as conn:
        remaining = [row[0] for row in await (await conn.execute("SELECT id FROM datasets ORDER BY id")).fetchall()]
    learnt_from = (await AdapterRegistry(logged).get(1)).dataset_id
    assert manual.id not in remaining and remaining == [learnt_from, report.dataset_id], "wiki-v1's and this run's"

    report = await run_cycle(strict.model_copy(update={"train_max_pairs": 20}), logged, force=True)
    assert report.status == "rejected" and report.adapter == "wiki-v2"
    assert report.used is not None and report.used["train"].startswith("20 of ")
    assert report.used["heldout"].startswith("5 of "), "the held-out pairs in the held-out split's proportion"
    assert "pairs used: 20 of" in report.summary()
    assert report.baseline["model"] == "wiki-v1"  # type: ignore[index]  # gated against the active adapter
    registry = AdapterRegistry(logged)
    rejected = await registry.get(2)
    assert rejected.status == "rejected" and rejected.error and "below the gate" in rejected.error
    assert (await registry.active()).name == "wiki-v1"  # type: ignore[union-attr]
    assert "wiki-v2" not in await served(vllm_url)


async def test_an_adapter_the_server_does_not_serve_as_trained_is_failed(
    logged: Database, training_settings: Settings, vllm_url: str
):
    # no server reproduces log-probs to 1e-9: as if vLLM ran in another precision than the trainer
    lenient_gate = {"gate_min_accuracy_delta": -1.0, "gate_min_margin_delta": -1e9}
    exacting = training_settings.model_copy(update={"canary_tolerance": 1e-9, **lenient_gate, **FEW_STEPS})
    report = await run_cycle(exacting, logged, force=True)

    assert report.status == "failed" and "does not serve wiki-v3 as it was trained" in report.message
    failed = await AdapterRegistry(logged).get(3)
    assert failed.status == "failed" and "log-probabilities differ by" in (failed.error or "")
    assert (await AdapterRegistry(logged).active()).name == "wiki-v1"  # type: ignore[union-attr]
    assert "wiki-v3" not in await served(vllm_url) and "wiki-v1" in await served(vllm_url)


def _start_killable_cycle(settings: Settings) -> subprocess.Popen[bytes]:
    """`run_cycle(force=True)` in a process of its own, configured like `wikibot train --now --force`."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    for name in ("data_dir", "database_url", "base_model", "llm_base_url", "train_max_length",
                 "train_batch_size", "train_gradient_accumulation", "train_learning_rate", "lora_rank",
                 "lora_alpha"):  # fmt: skip
        env[f"WIKIBOT_{name.upper()}"] = str(getattr(settings, name))
    env["WIKIBOT_VLLM_URLS"] = json.dumps(settings.vllm_urls)
    env["WIKIBOT_TRAIN_EPOCHS"] = "50"  # long enough to be killed midway
    code = (
        "import asyncio\n"
        "from core.config import Settings\n"
        "from core.db import Database\n"
        "from training.cycle import run_cycle\n"
        "async def main():\n"
        "    settings = Settings()\n"
        "    async with Database.open(settings) as db:\n"
        "        await run_cycle(settings, db, force=True)\n"
        "asyncio.run(main())\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, start_new_session=True)


async def test_a_killed_run_leaves_the_active_adapter_and_is_cleaned_up(
    logged: Database, training_settings: Settings, vllm_url: str
):
    registry = AdapterRegistry(logged)
    process = _start_killable_cycle(training_settings)
    try:
        deadline = time.monotonic() + 120
        while not list(training_settings.adapters_dir.glob("wiki-v4.partial")):  # training has begun
            assert process.poll() is None and time.monotonic() < deadline, "the training run did not start"
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    assert (await registry.get(4)).status == "training", "left behind by the killed run"
    assert (await registry.active()).name == "wiki-v1"  # type: ignore[union-attr]
    assert "wiki-v1" in await served(vllm_url)

    report = await run_cycle(training_settings, logged)
    assert report.status == "skipped" and report.recovered == ["wiki-v4"]
    killed = await registry.get(4)
    assert killed.status == "failed" and "interrupted" in (killed.error or "")
    assert not Path(killed.path).exists() and not Path(killed.path + ".partial").exists()
    assert (await registry.active()).name == "wiki-v1"  # type: ignore[union-attr]


async def test_commands(logged: Database, training_settings: Settings, vllm_url: str, capsys: pytest.CaptureFixture):
    assert await commands.train_command(argparse.Namespace(force=False, json=True), training_settings) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "skipped" and report["new_pairs"] == 0

    assert await commands.adapters_list(argparse.Namespace(json=True), training_settings) == 0
    listed = {a["name"]: a["status"] for a in json.loads(capsys.readouterr().out)}
    assert listed == {"wiki-v1": "active", "wiki-v2": "rejected", "wiki-v3": "failed", "wiki-v4": "failed"}

    assert await commands.adapters_promote(argparse.Namespace(version=2), training_settings) == 0
    assert "wiki-v2 is active (was wiki-v1)" in capsys.readouterr().out
    assert "wiki-v2" in await served(vllm_url)
    assert await commands.adapters_rollback(argparse.Namespace(), training_settings) == 0
    assert "wiki-v1 is active (was wiki-v2)" in capsys.readouterr().out

    assert await commands.adapters_list(argparse.Namespace(json=False), training_settings) == 0
    table = capsys.readouterr().out
    assert "wiki-v1    active" in table and "interrupted" in table


async def test_the_answer_gate_judges_the_answers_both_adapters_generate(
    logged: Database, training_settings: Settings
):  # last: it may promote
    answer_gate = {"gate_answers": True, "gate_answer_prompts": 3, "llm_max_tokens": 8}
    lenient_gate = {"gate_min_accuracy_delta": -1.0, "gate_min_margin_delta": -1e9}
    report = await run_cycle(training_settings.model_copy(update={**answer_gate, **lenient_gate, **FEW_STEPS}),
                             logged, force=True)  # fmt: skip

    (adapter,) = [a for a in await AdapterRegistry(logged).list() if a.name == report.adapter]
    candidate, baseline = (AnswerMetrics(**adapter.metrics[key]) for key in ("answers", "baseline_answers"))
    assert candidate.n == baseline.n == 3
    assert report.answers == {"candidate": candidate.as_dict(), "baseline": baseline.as_dict()}
    promote, reason = decide_answers(candidate, baseline)
    assert report.status == ("promoted" if promote else "rejected"), "promoted only if the answers are better"
    assert reason in adapter.metrics["gate"] and "answers: cites the right source" in report.summary()
