"""The answering model: LangChain's ChatOpenAI against vLLM's OpenAI-compatible API, errors made plain."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
from langchain_openai import ChatOpenAI

from retrieval.config import Settings


class LLMError(RuntimeError):
    """Why no answer came: `kind` is not_configured, unreachable, timeout, unknown_model or error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ChatLLM:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._models: dict[str, ChatOpenAI] = {}
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

    async def stream(self, messages: list[dict[str, str]], model: str) -> AsyncIterator[str]:
        if not self.configured:
            raise LLMError("not_configured", "no language model is configured (set WIKIBOT_LLM_BASE_URL)")
        try:
            async for chunk in self.chat_model(model).astream(messages):
                if isinstance(chunk.content, str) and chunk.content:
                    yield chunk.content
        except openai.NotFoundError as exc:
            raise LLMError("unknown_model", f"the LLM server does not know the model {model!r}") from exc
        except openai.APITimeoutError as exc:
            raise LLMError("timeout", f"the LLM did not answer within {self.settings.llm_timeout:g}s") from exc
        except openai.APIConnectionError as exc:
            raise LLMError("unreachable", f"cannot reach the LLM at {self.settings.llm_base_url}") from exc
        except openai.APIStatusError as exc:
            raise LLMError("error", f"the LLM server answered {exc.status_code}: {exc.message}") from exc
