"""The only module that talks to vLLM's runtime LoRA endpoints (load, unload, list) on every server."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx

from core.config import NO_API_KEY, Settings
from core.db import redact
from core.canary import TOP_LOGPROBS, Reference, Step, deviation

log = logging.getLogger(__name__)


class AdapterLoadError(RuntimeError):
    def __init__(self, message: str) -> None:
        super().__init__(redact(message))  # server URLs may carry credentials; the message is logged and stored


def _token_id(token: str) -> int:
    """vLLM's `return_tokens_as_token_ids` spelling: "token_id:123"."""
    return int(token.rpartition(":")[2])


@dataclass(frozen=True)
class VLLMServer:
    base_url: str  # ends in /v1

    def url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{path}"

    @property
    def name(self) -> str:
        """The base URL without credentials, for logs."""
        return redact(self.base_url)


class VLLMAdapters:
    def __init__(self, base_urls: list[str], api_key: str = NO_API_KEY, timeout: float = 60.0) -> None:
        self.servers = [VLLMServer(u) for u in base_urls]
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = timeout

    async def _post(self, server: VLLMServer, path: str, payload: dict) -> httpx.Response:
        async with httpx.AsyncClient(timeout=self._timeout, headers=self._headers) as client:
            return await client.post(server.url(path), json=payload)

    async def served_models(self, server: VLLMServer) -> dict[str, str | None]:
        """Served model id -> where it was loaded from (`root`: the adapter directory, for an adapter)."""
        async with httpx.AsyncClient(timeout=self._timeout, headers=self._headers) as client:
            response = await client.get(server.url("models"))
        response.raise_for_status()
        return {m["id"]: m.get("root") for m in response.json()["data"]}

    async def load(self, server: VLLMServer, name: str, path: str) -> None:
        """Load `name` from `path`; a `name` already served from another directory is replaced in place."""
        payload = {"lora_name": name, "lora_path": path}
        try:
            response = await self._post(server, "load_lora_adapter", payload)
            if response.status_code != 200 and "already been loaded" in response.text:
                if (await self.served_models(server)).get(name) == path:
                    return
                log.warning("%s: %s is served from another directory; loading %s in its place",
                            server.name, name, path)
                response = await self._post(server, "load_lora_adapter", payload | {"load_inplace": True})
        except httpx.HTTPError as exc:
            raise AdapterLoadError(f"{server.base_url}: cannot load {name}: {exc}") from exc
        if response.status_code != 200:
            raise AdapterLoadError(f"{server.base_url}: cannot load {name}: {response.status_code} {response.text}")

    async def unload(self, server: VLLMServer, name: str) -> None:
        response = await self._post(server, "unload_lora_adapter", {"lora_name": name})
        if response.status_code not in (200, 404) and "not found" not in response.text.lower():
            log.warning("%s: unloading %s failed: %s %s", server.name, name, response.status_code, response.text)

    async def load_everywhere(self, name: str, path: str) -> None:
        """Load on every server; if any fails, unload it from the others and raise."""
        results = await asyncio.gather(*(self.load(s, name, path) for s in self.servers), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.unload_everywhere(name)
            raise AdapterLoadError("; ".join(str(e) for e in errors))

    async def _canary_request(self, server: VLLMServer, path: str, payload: dict) -> httpx.Response:
        """A request with the new adapter (`payload["model"]`); any failure is an AdapterLoadError."""
        try:
            response = await self._post(server, path, payload)
        except httpx.HTTPError as exc:
            raise AdapterLoadError(f"{server.base_url}: canary request to {payload['model']} failed: {exc}") from exc
        if response.status_code != 200:
            raise AdapterLoadError(
                f"{server.base_url}: canary request to {payload['model']} failed: {response.status_code} "
                f"{response.text}"
            )
        return response

    async def canary(self, server: VLLMServer, name: str) -> None:
        """One tiny chat completion with model=`name`: proves the server answers with the adapter."""
        payload = {"model": name, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
        await self._canary_request(server, "chat/completions", payload)

    async def greedy_steps(self, server: VLLMServer, name: str, prompt_ids: list[int], max_tokens: int) -> list[Step]:
        """`name`'s greedy continuation of `prompt_ids` with each token's log-probability and the runners-up'.

        A plain generation request (no `prompt_logprobs`: see core/canary.py)."""
        payload = {
            "model": name, "prompt": prompt_ids, "max_tokens": max_tokens, "temperature": 0.0,
            "logprobs": TOP_LOGPROBS, "return_tokens_as_token_ids": True,
        }  # fmt: skip
        response = await self._canary_request(server, "completions", payload)
        logprobs = response.json()["choices"][0]["logprobs"]
        return [
            Step(_token_id(token), logprob, {_token_id(t): lp for t, lp in top.items()})
            for token, logprob, top in zip(logprobs["tokens"], logprobs["token_logprobs"], logprobs["top_logprobs"])
        ]

    async def check_served(self, name: str, references: list[Reference], tolerance: float) -> float:
        """Every server's greedy log-probs for `name` against the trainer's `references`; the worst deviation.
        Raises AdapterLoadError naming the server when it exceeds `tolerance`."""
        worst = 0.0
        for server in self.servers:
            for ref in references:
                served = await self.greedy_steps(server, name, ref.prompt_ids, len(ref.steps))
                found = deviation(ref.steps, served)
                if found > tolerance:
                    raise AdapterLoadError(
                        f"{server.base_url} does not serve {name} as it was trained: log-probabilities differ by "
                        f"{found:.4f} (tolerance {tolerance:g}); wrong dtype, base model or adapter files?"
                    )
                worst = max(worst, found)
        return worst

    async def canary_everywhere(self, name: str) -> None:
        """A canary request on every server; raise if any fails (the caller decides what to unload)."""
        results = await asyncio.gather(*(self.canary(s, name) for s in self.servers), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise AdapterLoadError("; ".join(str(e) for e in errors))

    async def unload_everywhere(self, name: str) -> None:
        await asyncio.gather(*(self.unload(s, name) for s in self.servers), return_exceptions=True)

    async def ensure_loaded(self, name: str, path: str) -> list[str]:
        """Reconcile after restarts: load `name` on each server that lacks it (or serves another directory under
        that name); return the servers reloaded."""
        reloaded = []
        for server in self.servers:
            try:
                if (await self.served_models(server)).get(name) == path:
                    continue
                await self.load(server, name, path)
                reloaded.append(server.name)
            except (httpx.HTTPError, AdapterLoadError) as exc:
                log.warning("could not reload adapter %s on %s: %s", name, server.name, redact(str(exc)))
        return reloaded


def configured_servers(settings: Settings) -> VLLMAdapters | None:
    """Every configured vLLM server: WIKIBOT_VLLM_URLS, else WIKIBOT_LLM_BASE_URL; None when neither is set."""
    urls = settings.vllm_urls or ([settings.llm_base_url] if settings.llm_base_url else [])
    return VLLMAdapters(urls, settings.llm_api_key, settings.llm_timeout) if urls else None
