"""Hot-swapping adapters into a real vLLM server: no dropped requests, all-or-nothing loads, reconcile, margins."""

from __future__ import annotations

import asyncio
import random
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import torch
from safetensors.torch import load_file, save_file

from core.config import Settings
from core.db import Database
from tests.conftest import BASE_MODEL_NAME
from tests.training.conftest import TRAINED_PAIRS
from training.gate import evaluate, evaluate_candidate
from core.registry import NAME_PREFIX, Adapter, AdapterRegistry, RegistryError
from training.swap import AdapterSwap, SwapError, vllm_servers
from tests.support.vllm_logprobs import served_margin
from core.vllm_server import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
async def registry(db: Database, training_settings: Settings, vllm_url: str) -> AsyncIterator[AdapterRegistry]:
    """An empty registry and a vLLM serving no wiki-v* adapter."""
    async with db.connection() as conn:
        await conn.execute("DELETE FROM adapters")
    shutil.rmtree(training_settings.adapters_dir, ignore_errors=True)
    for name in await served(vllm_url):
        if name.startswith(NAME_PREFIX):
            await vllm_servers(training_settings).unload_everywhere(name)
    yield AdapterRegistry(db)


async def candidate(
    registry: AdapterRegistry, settings: Settings, trained_adapter: Path, metrics: dict | None = None
) -> Adapter:
    """A new version whose directory holds (a copy of) the trained adapter."""
    adapter = await registry.create(settings.adapters_dir, None)
    shutil.copytree(trained_adapter, adapter.path)
    await registry.set_candidate(adapter.version, metrics or {})
    return await registry.get(adapter.version)


@pytest.fixture
def swap(registry: AdapterRegistry, training_settings: Settings) -> AdapterSwap:
    return AdapterSwap.from_settings(training_settings, registry.db)


@pytest.fixture(scope="module")
def canary(tiny_model: Path, trained_adapter: Path, preference_pairs: list[dict]) -> dict:
    """The trained adapter's canary references, as a training cycle records them."""
    _, references = evaluate_candidate(str(tiny_model), str(trained_adapter), [], preference_pairs[TRAINED_PAIRS:])
    return {"canary": [ref.as_dict() for ref in references]}


def zero_lora_b(adapter_dir: Path) -> None:
    """Make the adapter's files those of an untrained adapter (the base model's outputs)."""
    weights = adapter_dir / "adapter_model.safetensors"
    tensors = load_file(weights)
    save_file({k: torch.zeros_like(v) if "lora_B" in k else v for k, v in tensors.items()}, weights)


async def served(vllm_url: str) -> set[str]:
    async with httpx.AsyncClient(timeout=30) as client:
        return {m["id"] for m in (await client.get(f"{vllm_url}/models")).json()["data"]}


async def chat(
    client: httpx.AsyncClient, vllm_url: str, model: str, max_tokens: int = 4, ignore_eos: bool = False
) -> httpx.Response:
    messages = [{"role": "user", "content": "How many days of bereavement leave for a grandparent?"}]
    payload = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0,
               "ignore_eos": ignore_eos}
    return await client.post(f"{vllm_url}/chat/completions", json=payload)


async def test_swap_serves_the_new_adapter_and_retires_the_old(
    registry: AdapterRegistry, swap: AdapterSwap, training_settings: Settings, trained_adapter: Path, vllm_url: str
):
    v1 = await candidate(registry, training_settings, trained_adapter)
    report = await swap.activate(v1.version)
    assert (report.activated, report.retired, report.servers) == ("wiki-v1", None, [vllm_url])
    v2 = await candidate(registry, training_settings, trained_adapter)
    report = await swap.activate(v2.version)
    assert (report.activated, report.retired) == ("wiki-v2", "wiki-v1")

    assert {"wiki-v1", "wiki-v2", BASE_MODEL_NAME} <= await served(vllm_url), "the old one stays for the grace period"
    async with httpx.AsyncClient(timeout=60) as client:
        response = await chat(client, vllm_url, "wiki-v2")
    assert response.status_code == 200 and response.json()["model"] == "wiki-v2"
    statuses = {a.name: a.status for a in await registry.list()}
    assert statuses == {"wiki-v1": "retired", "wiki-v2": "active"}

    await swap.reconcile()
    assert "wiki-v1" in await served(vllm_url), "still within WIKIBOT_ADAPTER_UNLOAD_GRACE_SECONDS"
    no_grace = training_settings.model_copy(update={"adapter_unload_grace_seconds": 0})
    done = await AdapterSwap.from_settings(no_grace, registry.db).reconcile()
    assert done.unloaded == [f"wiki-v1@{vllm_url}"] and not done.reloaded
    assert "wiki-v1" not in await served(vllm_url) and "wiki-v2" in await served(vllm_url)
    assert Path(v1.path).is_dir(), "adapter directories are never deleted by a swap"


async def test_requests_in_flight_during_a_swap_all_succeed(
    registry: AdapterRegistry, swap: AdapterSwap, training_settings: Settings, trained_adapter: Path, vllm_url: str
):
    v1 = await candidate(registry, training_settings, trained_adapter)
    await swap.activate(v1.version)
    v2 = await candidate(registry, training_settings, trained_adapter)
    rng = random.Random(0)
    loop = asyncio.get_running_loop()

    async def ask(client: httpx.AsyncClient, model: str | None) -> tuple[str, int, float]:
        if model is None:  # like the bot: read the active adapter when the question comes
            await asyncio.sleep(rng.uniform(0, 1.0))
            active = await registry.active()
            model = active.name if active else BASE_MODEL_NAME
        # long answers (no early stop) keep the requests sent with the old name in flight through the swap
        response = await chat(client, vllm_url, model, max_tokens=200, ignore_eos=True)
        return model, response.status_code, loop.time()

    async with httpx.AsyncClient(timeout=120) as client:
        sent = [asyncio.create_task(ask(client, "wiki-v1")) for _ in range(10)]  # already sent with the old name
        sent += [asyncio.create_task(ask(client, None)) for _ in range(10)]
        await asyncio.sleep(0.1)
        swapping = asyncio.create_task(swap.activate(v2.version))
        # the canary waits behind the busy engine, so keep sending with the old name until the flip, as a bot
        # that read the active adapter just before it would: those requests are in flight when it happens
        while not swapping.done():
            sent.append(asyncio.create_task(ask(client, "wiki-v1")))
            await asyncio.sleep(0.05)
        await swapping
        swapped_at = loop.time()
        results = await asyncio.gather(*sent)
        after = await chat(client, vllm_url, "wiki-v2")
    assert [status for _, status, _ in results] == [200] * len(sent) and len(sent) >= 20
    assert {model for model, _, _ in results} <= {"wiki-v1", "wiki-v2"}
    assert any(model == "wiki-v1" and done > swapped_at for model, _, done in results), "some were in flight"
    assert after.status_code == 200


async def test_an_adapter_is_served_only_if_the_server_answers_as_it_was_trained(
    registry: AdapterRegistry, swap: AdapterSwap, training_settings: Settings, trained_adapter: Path, vllm_url: str,
    canary: dict,
):  # fmt: skip
    v1 = await candidate(registry, training_settings, trained_adapter, canary)
    assert (await swap.activate(v1.version)).activated == "wiki-v1", "served as trained"

    v2 = await candidate(registry, training_settings, trained_adapter, canary)
    zero_lora_b(Path(v2.path))  # the files on disk are not what the trainer measured
    with pytest.raises(SwapError, match="does not serve wiki-v2 as it was trained: log-probabilities differ by"):
        await swap.activate(v2.version)
    assert (await registry.active()).name == "wiki-v1"  # type: ignore[union-attr]
    assert "wiki-v2" not in await served(vllm_url) and "wiki-v1" in await served(vllm_url)


async def test_a_failed_load_on_one_server_changes_nothing(
    registry: AdapterRegistry, swap: AdapterSwap, training_settings: Settings, trained_adapter: Path, vllm_url: str
):
    v1 = await candidate(registry, training_settings, trained_adapter)
    await swap.activate(v1.version)
    v2 = await candidate(registry, training_settings, trained_adapter)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    two_servers = training_settings.model_copy(update={"vllm_urls": [vllm_url, dead], "llm_timeout": 5.0})

    with pytest.raises(SwapError, match="wiki-v2 was not activated"):
        await AdapterSwap.from_settings(two_servers, registry.db).activate(v2.version)
    assert (await registry.active()).name == "wiki-v1"  # type: ignore[union-attr]
    assert (await registry.get(v2.version)).status == "candidate"
    assert "wiki-v2" not in await served(vllm_url), "unloaded from the server that had loaded it"
    assert "wiki-v1" in await served(vllm_url)


async def test_a_broken_adapter_fails_the_canary_or_load_and_changes_nothing(
    registry: AdapterRegistry, swap: AdapterSwap, training_settings: Settings, trained_adapter: Path, vllm_url: str
):
    v1 = await candidate(registry, training_settings, trained_adapter)
    shutil.rmtree(v1.path)  # e.g. a directory the servers cannot read
    with pytest.raises(SwapError):
        await swap.activate(v1.version)
    assert await registry.active() is None
    assert "wiki-v1" not in await served(vllm_url)


async def test_the_active_or_a_failed_adapter_cannot_be_promoted(
    registry: AdapterRegistry, swap: AdapterSwap, training_settings: Settings, trained_adapter: Path, vllm_url: str
):
    v1 = await candidate(registry, training_settings, trained_adapter)
    await swap.activate(v1.version)
    with pytest.raises(RegistryError, match="wiki-v1 cannot be promoted: it is active"):
        await swap.activate(v1.version)
    assert "wiki-v1" in await served(vllm_url), "still served"
    v2 = await candidate(registry, training_settings, trained_adapter)
    await registry.set_failed(v2.version, "boom")
    with pytest.raises(RegistryError, match="it is failed"):
        await swap.activate(v2.version)
    assert "wiki-v2" not in await served(vllm_url)


async def test_reconcile_reloads_the_active_adapter_a_restarted_server_lost(
    registry: AdapterRegistry, swap: AdapterSwap, training_settings: Settings, trained_adapter: Path, vllm_url: str
):
    v1 = await candidate(registry, training_settings, trained_adapter)
    await swap.activate(v1.version)
    await vllm_servers(training_settings).unload_everywhere("wiki-v1")  # what a restart does
    assert "wiki-v1" not in await served(vllm_url)

    done = await swap.reconcile()
    assert done.reloaded == [vllm_url]
    async with httpx.AsyncClient(timeout=60) as client:
        assert (await chat(client, vllm_url, "wiki-v1")).status_code == 200
    assert (await swap.reconcile()).reloaded == [], "nothing to do the second time"


async def first_logprobs(vllm_url: str, model: str) -> list[float]:
    """Log-probabilities of the first greedy tokens `model` generates for the test question."""
    messages = [{"role": "user", "content": "How many days of bereavement leave for a grandparent?"}]
    payload = {"model": model, "messages": messages, "max_tokens": 4, "temperature": 0, "logprobs": True}
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(f"{vllm_url}/chat/completions", json=payload)
    assert response.status_code == 200, response.text
    return [token["logprob"] for token in response.json()["choices"][0]["logprobs"]["content"]]


async def test_a_name_served_from_another_directory_is_replaced_in_place(
    registry: AdapterRegistry, swap: AdapterSwap, training_settings: Settings, trained_adapter: Path, vllm_url: str,
    tmp_path: Path,
):  # fmt: skip
    v1 = await candidate(registry, training_settings, trained_adapter)
    await swap.activate(v1.version)
    elsewhere = tmp_path / "wiki-v1"  # e.g. a database reset that numbers adapters from 1 again
    shutil.copytree(trained_adapter, elsewhere)
    zero_lora_b(elsewhere)
    base = await first_logprobs(vllm_url, BASE_MODEL_NAME)
    assert await first_logprobs(vllm_url, "wiki-v1") != pytest.approx(base, abs=1e-4), "the trained one differs"
    servers = vllm_servers(training_settings)

    assert await servers.ensure_loaded("wiki-v1", str(elsewhere)) == [vllm_url]
    assert (await servers.served_models(servers.servers[0]))["wiki-v1"] == str(elsewhere)
    assert await first_logprobs(vllm_url, "wiki-v1") == pytest.approx(base, abs=1e-4), "served from there now"
    assert await servers.ensure_loaded("wiki-v1", str(elsewhere)) == [], "nothing to reload"
    await servers.load(servers.servers[0], "wiki-v1", str(elsewhere))  # loading it again is a no-op, no error


async def test_rollback_serves_the_parent_again(
    registry: AdapterRegistry, swap: AdapterSwap, training_settings: Settings, trained_adapter: Path, vllm_url: str
):
    v1 = await candidate(registry, training_settings, trained_adapter)
    await swap.activate(v1.version)
    v2 = await candidate(registry, training_settings, trained_adapter)
    await swap.activate(v2.version)
    await vllm_servers(training_settings).unload_everywhere("wiki-v1")  # unloaded after its grace period

    report = await swap.rollback()
    assert (report.activated, report.retired) == ("wiki-v1", "wiki-v2")
    assert "wiki-v1" in await served(vllm_url), "loaded again before it became active"
    assert (await registry.active()).name == "wiki-v1"  # type: ignore[union-attr]
    report = await swap.rollback()
    assert (report.activated, report.retired) == (None, "wiki-v1")
    assert await registry.active() is None


async def test_served_margin_of_the_trained_adapter_beats_the_base(
    registry: AdapterRegistry, swap: AdapterSwap, training_settings: Settings, trained_adapter: Path, vllm_url: str,
    tiny_model: Path, preference_pairs: list[dict],
):  # fmt: skip
    v1 = await candidate(registry, training_settings, trained_adapter)
    await swap.activate(v1.version)
    trained_prompts = preference_pairs[:TRAINED_PAIRS][:8]
    base = await served_margin(vllm_url, BASE_MODEL_NAME, trained_prompts, base_model=str(tiny_model))
    tuned = await served_margin(vllm_url, "wiki-v1", trained_prompts, base_model=str(tiny_model))
    assert tuned > base
    in_process = evaluate(str(tiny_model), v1.path, trained_prompts).mean_margin
    assert tuned == pytest.approx(in_process, abs=1e-2), "vLLM scores the same tokens as the gate"
