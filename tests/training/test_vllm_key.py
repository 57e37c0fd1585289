"""A vLLM started with an API key (as deploy/ and `wikibot up` start it) serves only those who send it; wikibot's
clients send it: answers, adapter listing and loading."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from bot.llm import ChatLLM, LLMError
from bot.llm import check_llm
from core.config import NO_API_KEY, Settings
from tests.conftest import BASE_MODEL_NAME
from tests.support.vllm_server import serve_vllm
from core.vllm_adapters import AdapterLoadError, VLLMAdapters

pytestmark = pytest.mark.slow
PROMPT = [{"role": "user", "content": "What is the sick leave policy?"}]


async def answer(settings: Settings) -> str:
    llm = ChatLLM(settings)
    try:
        return "".join([piece async for piece in llm.stream(PROMPT, BASE_MODEL_NAME)])
    finally:
        await llm.aclose()


async def test_vllm_with_a_key_serves_only_the_clients_that_send_it(tiny_model: Path, tmp_path: Path):
    key = uuid.uuid4().hex
    with serve_vllm(tiny_model, BASE_MODEL_NAME, api_key=key) as url:
        async with httpx.AsyncClient(timeout=30) as client:
            stranger = await client.post(f"{url}/load_lora_adapter", json={"lora_name": "x", "lora_path": "/tmp"})
        assert stranger.status_code == 401, "no adapter loads without the key"

        settings = Settings(data_dir=tmp_path, llm_base_url=url, llm_api_key=key, llm_max_tokens=4)
        assert await check_llm(settings) == f"LLM: {url}, model {BASE_MODEL_NAME}"
        assert await answer(settings)
        holder = VLLMAdapters([url], key)
        assert BASE_MODEL_NAME in await holder.served_models(holder.servers[0])
        with pytest.raises(AdapterLoadError) as missing:  # let in: vLLM looks for the adapter's files
            await holder.load(holder.servers[0], "wiki-v9", str(tmp_path / "no-such-adapter"))
        assert "401" not in str(missing.value)

        keyless = settings.model_copy(update={"llm_api_key": NO_API_KEY})
        with pytest.raises(LLMError, match="answered 401"):
            await answer(keyless)
        with pytest.raises(AdapterLoadError, match="401"):
            await VLLMAdapters([url]).load(holder.servers[0], "wiki-v9", str(tmp_path))
