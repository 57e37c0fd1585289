"""The answering pipeline: retrieve, build the prompt, ask the LLM, check citations, log everything.

Used by the Slack listeners and by `wikibot ask`; it knows nothing of Slack.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import psycopg

from bot.llm import ChatLLM, LLMError
from core.answer_log import AnswerLog, AskContext, InteractionRecord
from core.prompt import (
    NO_SOURCES_ANSWER,
    Source,
    Turn,
    build_messages,
    clean_citations,
    fit_sources,
    surely_fits,
)
from bot.sources import number_sources
from retrieval.index import WikiIndex
from retrieval.models import SearchHit
from core.registry import AdapterRegistry, ServedAdapter
from core.vllm_adapters import VLLMAdapters

log = logging.getLogger(__name__)

TokenSink = Callable[[str], Awaitable[None]]
SOURCES_ONLY_LEAD = "I can't generate an answer right now, but these wiki pages look most relevant:"
BEST_SOURCES = 3  # shown when there is no answer, or when the answer cites none
TOKEN_COUNTS = 4  # most /tokenize calls spent fitting one prompt to the model's context
NOT_SAVED = "This answer could not be saved (the database is unavailable), so it cannot take feedback."


@dataclass
class Answer:
    interaction_id: int | None  # None: the answer could not be logged
    text: str
    status: str
    sources: list[Source]
    cited: list[Source]
    model: str | None = None
    note: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    uncited: list[Source] = field(default_factory=list)  # the best sources, when an answer cites none


class Answerer:
    def __init__(
        self, index: WikiIndex, answer_log: AnswerLog, registry: AdapterRegistry, llm: ChatLLM,
        adapters: VLLMAdapters | None = None,
    ) -> None:  # fmt: skip
        self.index = index
        self.settings = index.settings
        self.answer_log = answer_log
        self.registry = registry
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
        earlier = history[-1].question if history else None  # a follow-up may not name its topic
        hits = await self.index.search.search(question, spaces=spaces, earlier=earlier)
        sources = number_sources(self._relevant(hits), self.settings.prompt_max_chars)
        retrieval_ms = (time.perf_counter() - started) * 1000
        messages = build_messages(question, sources, history, self.settings.company_name)

        raw: str | None = None
        model: str | None = None
        note: str | None = None
        error: str | None = None
        adapter = await self.registry.serving()
        generation_started = time.perf_counter()
        if not sources:
            text, cited, status = NO_SOURCES_ANSWER, [], "no_sources"
        else:
            try:
                sources, messages = await self._fit(question, sources, history, messages)
                raw, model = await self._generate(messages, adapter, on_token)
                text, numbers = clean_citations(raw, len(sources))
                cited, status = [s for s in sources if s.n in numbers], "answered"
            except LLMError as exc:
                log.warning("answering without the LLM: %s", exc)
                error = f"{exc.kind}: {exc}"
                text, cited, status = SOURCES_ONLY_LEAD, sources[:BEST_SOURCES], "llm_error"
                note = f"{exc.public[:1].upper()}{exc.public[1:]} — showing the best matching wiki pages instead."
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
            context=context,
        )
        interaction_id: int | None = None
        try:
            interaction_id = await self.answer_log.log_interaction(record)
        except psycopg.Error as exc:  # the answer is given all the same, saying it was not saved
            asked = f"message {context.channel_id}/{context.question_ts}" if context.channel_id else context.source
            log.error("could not save the answer to %s, giving it unsaved: %s", asked, exc)
            note = f"{note} {NOT_SAVED}" if note else NOT_SAVED
        timings = {"retrieval_ms": retrieval_ms, "generation_ms": generation_ms, "total_ms": record.total_ms or 0}
        uncited = sources[:BEST_SOURCES] if status == "answered" and not cited else []
        if uncited:
            log.info("answer %s cites no source: showing the best %d, %s", interaction_id, len(uncited),
                     ", ".join(f"[{s.n}] {s.label}" for s in uncited))
        return Answer(interaction_id, text, status, sources, cited, model, note, timings, uncited)

    async def _fit(
        self, question: str, sources: list[Source], history: Sequence[Turn], messages: list[dict[str, str]]
    ) -> tuple[list[Source], list[dict[str, str]]]:
        """Sources and prompt that fit the served model's context with room for the answer.

        vLLM counts the prompt (/tokenize, with the base model: adapters share its tokenizer and context); while
        it is too long the lowest-ranked sources are dropped, and a last source too long is cut. When not even
        an empty source fits with the question and thread, LLMError("too_long"): the best sources are shown
        instead. Without /tokenize (not vLLM, unreachable) the prompt goes as it is: WIKIBOT_PROMPT_MAX_CHARS
        is then the only bound. A prompt that surely fits a context learnt before is not counted.
        """
        model, answer_tokens = self.settings.llm_model, self.settings.llm_max_tokens
        context = self.llm.context_length(model)
        if context is not None and surely_fits(messages, context - answer_tokens):
            return sources, messages
        fitted = sources
        for _ in range(TOKEN_COUNTS):
            size = await self.llm.count_tokens(messages, model)
            if size is None or size.tokens <= size.context - answer_tokens:
                break
            fitted = fit_sources(fitted, messages, size.tokens, size.context - answer_tokens)
            if not fitted:
                raise LLMError("too_long", f"the question and its thread are too long for the model's context of "
                                           f"{size.context} tokens ({answer_tokens} of them kept for the answer)")
            messages = build_messages(question, fitted, history, self.settings.company_name)
        if fitted != sources:
            dropped = ", ".join(f"[{s.n}] {s.label}" for s in sources[len(fitted) :]) or "none"
            cut = f"; cut [1] to {len(fitted[0].text)} characters" if fitted[0] != sources[0] else ""
            log.info("prompt fitted to the context of %s (%s tokens, %d for the answer): dropped sources %s%s",
                     model, self.llm.context_length(model), answer_tokens, dropped, cut)
        return fitted, messages

    def _relevant(self, hits: Sequence[SearchHit]) -> list[SearchHit]:
        """Hits a full-text search matched, a correction named right for a question like it, or close enough in
        meaning; the rest is noise, not an answer."""
        floor = self.settings.min_similarity
        return [h for h in hits if h.ranks.keys() & {"text", "feedback"} or (h.similarity or 0) >= floor]

    async def _generate(
        self, messages: list[dict[str, str]], adapter: ServedAdapter | None, on_token: TokenSink | None
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
