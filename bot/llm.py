"""The answering model: LangChain's ChatOpenAI against vLLM's OpenAI-compatible API, errors made plain."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import openai
from langchain_openai import ChatOpenAI

from core.config import Settings
from core.db import redact

log = logging.getLogger(__name__)
UNAVAILABLE = "the language model is not available"
NO_LLM = (
    "LLM: none configured. Set WIKIBOT_LLM_BASE_URL to a vLLM server (http://host:8000/v1), or WIKIBOT_BASE_MODEL "
    "to a Hugging Face model name or path to start one here. Until then answers list the best wiki sources only."
)
_TOLD_AS_IS = ("timeout", "too_long")  # kinds whose message helps the asker and holds nothing of the server's
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 and C1 controls but tab and newline


def printable(text: str) -> str:
    """Model output without control characters: a model can emit any token, and PostgreSQL text cannot hold
    NUL, nor do Slack messages or the renderer's placeholders want the others."""
    return _CONTROL.sub("", text)


class LLMError(RuntimeError):
    """Why no answer came: `kind` is not_configured, unreachable, timeout, unknown_model, too_long or error.
    The message is for operators (logs, the answer log); `public` is what the asker is told."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(redact(message))
        self.kind = kind

    @property
    def public(self) -> str:
        return str(self) if self.kind in _TOLD_AS_IS else UNAVAILABLE


@dataclass(frozen=True)
class PromptSize:
    tokens: int
    context: int  # the served model's context length (vLLM's max_model_len), prompt and answer together


class ChatLLM:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._models: dict[str, ChatOpenAI] = {}
        self._contexts: dict[str, int] = {}
        self._warned_no_count = False
        # our own connection pool: langchain-openai's default one is cached per process and bound to the
        # event loop that first used it
        self._http = httpx.AsyncClient(timeout=settings.llm_timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def configured(self) -> bool:
        return self.settings.llm_base_url is not None

    def chat_model(self, model: str) -> ChatOpenAI:
        """One client per served model name (base model or adapter), kept for reuse."""
        if model not in self._models:
            self._models[model] = ChatOpenAI(
                base_url=self.settings.llm_base_url,
                api_key=self.settings.llm_api_key,
                model=model,
                temperature=self.settings.llm_temperature,
                max_tokens=self.settings.llm_max_tokens,
                timeout=self.settings.llm_timeout,
                max_retries=0,  # the caller decides: reload the adapter, fall back, or answer with sources
                streaming=True,
                http_async_client=self._http,
            )
        return self._models[model]

    def context_length(self, model: str) -> int | None:
        """The model's context length as last counted, if it ever was."""
        return self._contexts.get(model)

    async def count_tokens(self, messages: list[dict[str, str]], model: str) -> PromptSize | None:
        """The prompt's size as vLLM builds it from `messages` (chat template, generation prompt), from its
        /tokenize; None where the server cannot say (not vLLM, unreachable, an error), warned about once."""
        if self.settings.llm_base_url is None:
            return None
        url = self.settings.llm_base_url.rstrip("/").removesuffix("/v1") + "/tokenize"
        body = {"model": model, "messages": messages, "add_generation_prompt": True}
        headers = {"Authorization": f"Bearer {self.settings.llm_api_key}"}
        try:
            response = await self._http.post(url, json=body, headers=headers)
            response.raise_for_status()
            answer = response.json()
            size = PromptSize(int(answer["count"]), int(answer["max_model_len"]))
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            if not self._warned_no_count:
                self._warned_no_count = True
                reason = f"HTTP {exc.response.status_code}" if isinstance(exc, httpx.HTTPStatusError) else repr(exc)
                log.warning("cannot count prompt tokens at %s (%s): prompts are only cut to "
                            "WIKIBOT_PROMPT_MAX_CHARS, not to the model's context", redact(url), redact(reason))
            return None
        self._contexts[model] = size.context
        return size

    async def stream(self, messages: list[dict[str, str]], model: str) -> AsyncIterator[str]:
        if not self.configured:
            raise LLMError("not_configured", "no language model is configured (set WIKIBOT_LLM_BASE_URL)")
        try:
            async for chunk in self.chat_model(model).astream(messages):
                if isinstance(chunk.content, str) and (text := printable(chunk.content)):
                    yield text
        except openai.NotFoundError as exc:
            raise LLMError("unknown_model", f"the LLM server does not know the model {model!r}") from exc
        except openai.APITimeoutError as exc:
            raise LLMError("timeout", f"the LLM did not answer within {self.settings.llm_timeout:g}s") from exc
        except openai.APIConnectionError as exc:
            raise LLMError("unreachable", f"cannot reach the LLM at {self.settings.llm_base_url}") from exc
        except openai.APIStatusError as exc:
            raise LLMError("error", f"the LLM server answered {exc.status_code}: {exc.message}") from exc


class LLMMisconfigured(ValueError):
    pass


async def check_llm(settings: Settings) -> str:
    """One line on the LLM for the start-up log. Raises LLMMisconfigured when the server answers but does not
    serve the configured model (a wrong name would otherwise fail every question)."""
    if settings.llm_base_url is None:
        return NO_LLM
    try:
        async with httpx.AsyncClient(timeout=5, headers={"Authorization": f"Bearer {settings.llm_api_key}"}) as client:
            response = await client.get(f"{settings.llm_base_url.rstrip('/')}/models")
        response.raise_for_status()
    except httpx.HTTPError as exc:
        problem = redact(str(exc) or type(exc).__name__)
        return f"LLM: {redact(settings.llm_base_url)} is not answering ({problem}); answers list sources until it does"
    served = {model["id"] for model in response.json().get("data", [])}
    if settings.llm_model not in served:
        raise LLMMisconfigured(
            f"the LLM server at {redact(settings.llm_base_url)} does not serve {settings.llm_model!r} "
            f"(it serves {', '.join(sorted(served)) or 'nothing'}): set WIKIBOT_LLM_MODEL to its served name"
        )
    return f"LLM: {redact(settings.llm_base_url)}, model {settings.llm_model}"
