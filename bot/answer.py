"""The answering pipeline: retrieve, build the prompt, ask the LLM, check citations, log everything.

Used by the Slack listeners and by `wikibot ask`; it knows nothing of Slack.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from bot.llm import ChatLLM, LLMError
from bot.prompt import NO_SOURCES_ANSWER, Source, Turn, build_messages, clean_citations, number_sources
from bot.store import ActiveAdapter, BotStore, InteractionRecord
from retrieval.index import WikiIndex
from retrieval.models import SearchHit
from training.vllm_adapters import VLLMAdapters

log = logging.getLogger(__name__)

TokenSink = Callable[[str], Awaitable[None]]
SOURCES_ONLY_LEAD = "I can't generate an answer right now, but these wiki pages look most relevant:"
SOURCES_ON_FAILURE = 3


@dataclass
class AskContext:
    """Where a question came from, for the log."""

    source: str = "cli"
    team_id: str | None = None
    channel_id: str | None = None
    user_id: str | None = None
    thread_ts: str | None = None
    question_ts: str | None = None


@dataclass
class Answer:
    interaction_id: int
    text: str
    status: str
    sources: list[Source]
    cited: list[Source]
    model: str | None = None
    note: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


class Answerer:
    def __init__(self, index: WikiIndex, store: BotStore, llm: ChatLLM, adapters: VLLMAdapters | None = None) -> None:
        self.index = index
        self.settings = index.settings
        self.store = store
        self.llm = llm
        self.adapters = adapters

    async def answer(
        self,
        question: str,
        *,
        spaces: Sequence[str] | None = None,
        history: Sequence[Turn] = (),
        context: AskContext | None = None,
        on_token: TokenSink | None = None,
    ) -> Answer:
        context = context or AskContext()
        started = time.perf_counter()
        hits = await self.index.search.search(question, spaces=spaces)
        sources = number_sources(self._relevant(hits), self.settings.prompt_max_chars)
        retrieval_ms = (time.perf_counter() - started) * 1000
        messages = build_messages(question, sources, history, self.settings.company_name)

        raw: str | None = None
        model: str | None = None
        note: str | None = None
        error: str | None = None
        adapter = await self.store.active_adapter()
        generation_started = time.perf_counter()
        if not sources:
            text, cited, status = NO_SOURCES_ANSWER, [], "no_sources"
        else:
            try:
                raw, model = await self._generate(messages, adapter, on_token)
                text, numbers = clean_citations(raw, len(sources))
                cited, status = [s for s in sources if s.n in numbers], "answered"
            except LLMError as exc:
                log.warning("answering without the LLM: %s", exc)
                error = f"{exc.kind}: {exc}"
                text, cited, status = SOURCES_ONLY_LEAD, sources[:SOURCES_ON_FAILURE], "llm_error"
                note = f"{exc} — showing the best matching wiki pages instead."
        generation_ms = (time.perf_counter() - generation_started) * 1000

        record = InteractionRecord(
            question=question,
            prompt_messages=messages,
            sources=[s.as_dict() for s in sources],
            answer=text,
            status=status,
            cited=[s.n for s in cited],
            raw_answer=raw,
            model=model,
            adapter_id=adapter.id if adapter and model == adapter.name else None,
            error=error,
            spaces=list(spaces) if spaces is not None else None,
            retrieval_ms=retrieval_ms,
            generation_ms=generation_ms,
            total_ms=(time.perf_counter() - started) * 1000,
            **context.__dict__,
        )
        interaction_id = await self.store.log_interaction(record)
        timings = {"retrieval_ms": retrieval_ms, "generation_ms": generation_ms, "total_ms": record.total_ms or 0}
        return Answer(interaction_id, text, status, sources, cited, model, note, timings)

    def _relevant(self, hits: Sequence[SearchHit]) -> list[SearchHit]:
        """Hits a full-text search matched, or close enough in meaning; the rest is noise, not an answer."""
        return [h for h in hits if "text" in h.ranks or (h.similarity or 0) >= self.settings.min_similarity]

    async def _generate(
        self, messages: list[dict[str, str]], adapter: ActiveAdapter | None, on_token: TokenSink | None
    ) -> tuple[str, str]:
        """(answer, served model). An adapter vLLM forgot is reloaded; failing that, the base model answers."""
        if adapter is None:
            return await self._complete(messages, self.settings.llm_model, on_token), self.settings.llm_model
        try:
            return await self._complete(messages, adapter.name, on_token), adapter.name
        except LLMError as exc:
            if exc.kind != "unknown_model":
                raise
        log.warning("vLLM does not know adapter %s (restarted?): reloading it", adapter.name)
        if self.adapters is not None and await self.adapters.ensure_loaded(adapter.name, adapter.path):
            try:
                return await self._complete(messages, adapter.name, on_token), adapter.name
            except LLMError as exc:
                if exc.kind != "unknown_model":
                    raise
        log.error("adapter %s could not be reloaded; answering with the base model", adapter.name)
        base = self.settings.llm_model
        return await self._complete(messages, base, on_token), base

    async def _complete(self, messages: list[dict[str, str]], model: str, on_token: TokenSink | None) -> str:
        parts: list[str] = []
        try:
            async with asyncio.timeout(self.settings.llm_timeout):
                async for piece in self.llm.stream(messages, model):
                    parts.append(piece)
                    if on_token is not None:
                        await on_token(piece)
        except TimeoutError as exc:
            if not parts:
                raise LLMError("timeout", f"the LLM did not answer within {self.settings.llm_timeout:g}s") from exc
            parts.append("\n\n_(answer cut off: the model took too long)_")
        return "".join(parts)
