"""The default model end to end: SmolLM2-135M-Instruct converted from its wheel, served by vLLM (float32 on a CPU),
answering Slack questions with citations; corrections train an adapter that the swap serves only after the
server reproduced the trainer's log-probabilities, while other questions are being answered."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from core.config import Settings
from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from retrieval.sample import labelled_questions
from tests.conftest import BASE_MODEL_NAME
from loopback import slack_events as ev
from loopback.bot_harness import running_bot, slack_settings
from loopback.slack_api import FakeSlackAPI
from core.canary import Reference
from training.cycle import run_cycle
from core.registry import AdapterRegistry
from core.vllm_adapters import VLLMAdapters

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # about 3 minutes alone on 2 cores
QUESTIONS = 4
# two of the pairs four corrections give (about 45): one optimizer step of a real adapter, half a minute on two cores
SHORT_TRAINING = {"train_epochs": 1.0, "train_max_length": 1024, "train_learning_rate": 2e-4, "train_max_pairs": 2}
# one step is no test of quality (bench/learning_loop.py is; tests/training/test_cycle.py tests the gate): the swap
# of a trained adapter is tested here
NO_GATE = {"gate_answers": False, "gate_min_accuracy_delta": -1.0, "gate_min_margin_delta": -1e6}


async def test_the_default_model_answers_learns_and_serves_what_it_learnt(
    wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder, real_vllm_url: str,
    default_model: Path, tmp_path: Path,
):  # fmt: skip
    configured = slack_settings(
        settings, slack, llm_base_url=real_vllm_url, llm_max_tokens=48, llm_temperature=0.0, prompt_max_chars=1500,
        data_dir=tmp_path, base_model=str(default_model), vllm_urls=[real_vllm_url], train_min_new_pairs=1,
        adapter_unload_grace_seconds=0, **SHORT_TRAINING, **NO_GATE,
    )  # fmt: skip
    async with running_bot(configured, slack, embedder) as bot:
        for labelled in labelled_questions()[:QUESTIONS]:
            question = ev.app_mention("U1", "C1", f"<@UBOT> {labelled.question}")
            await bot.post(question)
            (*_, row) = await bot.wait_answered(len(await bot.interactions()) + 1, timeout=120)
            assert row["status"] == "answered" and row["model"] == BASE_MODEL_NAME, row
            assert len(row["answer"].split()) >= 3, "a real model answers in words"
            final = bot.slack.calls_to("chat.update")[-1].params
            shown = " ".join(b["elements"][0]["text"] for b in final["blocks"] if b["type"] == "context")
            assert re.search(r"Sources", shown), "sources are shown, cited or not"
            right = next((s for s in row["sources"] if labelled.pages[0] in s["url"]), row["sources"][0])
            fact = right["text"].split(".")[0][:160]
            await bot.post(ev.channel_message("U2", "C1", f"Actually: {fact}. See [{right['n']}].",
                                              thread_ts=question["ts"]))  # fmt: skip
            await bot.confirm_correction("U2", question["ts"])  # its author says Yes when asked
        await bot.settled()  # every reaction and correction recorded

        # the cycle trains on the corrections; the swap checks the served adapter while people keep asking
        async def traffic() -> list[int]:
            async with httpx.AsyncClient(timeout=120) as client:
                answers = [client.post(f"{real_vllm_url}/chat/completions", json={
                    "model": BASE_MODEL_NAME, "max_tokens": 32, "temperature": 0.7,
                    "messages": [{"role": "user", "content": f"Tell me about leave policy number {i}."}],
                }) for i in range(6)]  # fmt: skip
                return [r.status_code for r in await asyncio.gather(*answers)]

        report, statuses = await asyncio.gather(run_cycle(configured, bot.services.index.db, force=True), traffic())
        assert report.status == "promoted", report.summary()
        assert statuses == [200] * 6

        active = await AdapterRegistry(bot.services.index.db).active()
        assert active is not None and active.name == report.adapter == "wiki-v1"
        references = [Reference.from_dict(r) for r in active.metrics["canary"]]
        worst = await VLLMAdapters([real_vllm_url]).check_served(active.name, references, configured.canary_tolerance)
        assert worst < 1e-3, "served == trained: float32 serving matches transformers + PEFT"

        # the next question is answered by the new adapter, with no restart of the bot or of vLLM
        await bot.post(ev.app_mention("U1", "C1", "<@UBOT> how do I reset my password?"))
        rows = await bot.wait_answered(QUESTIONS + 1, timeout=120)
        assert rows[-1]["model"] == "wiki-v1" and rows[-1]["status"] == "answered"
        await VLLMAdapters([real_vllm_url]).unload_everywhere("wiki-v1")
