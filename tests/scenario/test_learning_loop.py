"""The whole loop on real parts: Slack questions and corrections -> preference pairs -> DPO on the tiny model ->
gated adapter -> hot-swapped into the running vLLM -> the next answer comes from the new adapter, and the served
model now prefers the corrected answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Settings
from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from retrieval.sample import labelled_questions
from loopback import slack_events as ev
from loopback.bot_harness import running_bot, slack_settings
from loopback.slack_api import FakeSlackAPI
from training.cycle import run_cycle
from training.datasets import latest_snapshot, load_pairs
from core.vllm_adapters import VLLMAdapters
from tests.support.vllm_logprobs import served_margin

pytestmark = pytest.mark.slow
QUESTIONS = 14


async def test_feedback_trains_an_adapter_that_serves_the_next_answer(
    wiki: WikiIndex, settings: Settings, slack: FakeSlackAPI, embedder: Embedder, vllm_url: str, tiny_model: Path,
    tmp_path: Path,
):
    configured = slack_settings(
        settings, slack, llm_base_url=vllm_url, llm_max_tokens=16, llm_temperature=0.0, prompt_max_chars=1200,
        data_dir=tmp_path, base_model=str(tiny_model), vllm_urls=[vllm_url], train_min_new_pairs=1,
        train_learning_rate=5e-3, train_epochs=4, train_batch_size=4, train_gradient_accumulation=1,
        train_max_pairs=48,  # some of the pairs: the cycle takes one of each prompt first, and these are tested
        gate_answers=False, train_max_length=1024, lora_rank=8, lora_alpha=16, adapter_unload_grace_seconds=0,
    )
    async with running_bot(configured, slack, embedder) as bot:
        # people ask; for each answer someone replies with the right answer, citing the right source
        for n, labelled in enumerate(labelled_questions()[:QUESTIONS]):
            question = ev.app_mention("U1", "C1", f"<@UBOT> {labelled.question}")
            await bot.post(question)
            (*_, row) = await bot.wait_answered(len(await bot.interactions()) + 1)
            right = next((s for s in row["sources"] if s["url"].split("#")[0].endswith(labelled.pages[0])),
                         row["sources"][0])
            fact = right["text"].split("\n")[0][:120]
            correction = f"Wrong, it is: {fact} [{right['n']}]"
            corrector, critic = f"UC{n}", f"UD{n}"  # many people: no one's share of the data is capped
            await bot.post(ev.channel_message(corrector, "C1", correction, thread_ts=question["ts"]))
            await bot.confirm_correction(corrector, question["ts"])  # its author says Yes when asked
            await bot.post(ev.reaction_added(critic, "-1", "C1", row["answer_ts"]))
        await bot.settled()  # every reaction and correction recorded

        report = await run_cycle(configured, bot.services.index.db, force=True)
        assert report.status == "promoted", report.summary()
        adapter = report.adapter
        assert adapter == "wiki-v1" and report.candidate["n"] > 0

        # the next question is answered by the new adapter, with no restart of the bot or of vLLM
        await bot.post(ev.app_mention("U1", "C1", "<@UBOT> how do I reset my password?"))
        rows = await bot.wait_answered(QUESTIONS + 1)
        assert rows[-1]["model"] == adapter and rows[-1]["adapter_id"] is not None

        # and the served model now prefers the corrected answers of the prompts it was trained on
        snapshot = await latest_snapshot(bot.services.index.db)
        trained = (await load_pairs(bot.services.index.db, snapshot.id, "train", configured.train_max_pairs))[:8]
        try:
            before = await served_margin(vllm_url, configured.llm_model, trained, base_model=str(tiny_model))
            after = await served_margin(vllm_url, adapter, trained, base_model=str(tiny_model))
        finally:  # the session's vLLM outlives this module's registry: free the name for other tests
            await VLLMAdapters([vllm_url]).unload_everywhere(adapter)
        assert after > before, (before, after)
