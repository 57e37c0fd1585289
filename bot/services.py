"""What the listeners need, built once per process from the settings."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bot.answer import Answerer
from bot.home import HomeStats
from bot.links import wiki_hosts
from bot.llm import ChatLLM
from bot.metrics import Metrics
from bot.pacing import AcksFirst
from core.answer_log import AnswerLog, FeedbackLog
from core.config import Settings
from core.db import Database
from core.registry import AdapterRegistry
from retrieval.embed import Embedder
from retrieval.index import WikiIndex
from core.vllm_adapters import configured_servers

WIKI_HOSTS_TTL_S = 300.0  # ingestion runs in other processes: how long a read of the wiki's hosts is trusted


@dataclass
class BotServices:
    settings: Settings
    index: WikiIndex
    answer_log: AnswerLog
    registry: AdapterRegistry
    answerer: Answerer
    feedback: FeedbackLog
    metrics: Metrics
    acks: AcksFirst = field(default_factory=AcksFirst)  # answers start once the requests in flight are acked
    _hosts: tuple[float, frozenset[str]] | None = field(default=None, init=False, repr=False)

    async def home_stats(self) -> HomeStats:
        """What App Home shows the bot's owners: the log's figures and each adapter's."""
        usage = await self.answer_log.usage_stats()
        return HomeStats(**vars(usage), adapters=await self.registry.figures())

    async def wiki_hosts(self) -> frozenset[str]:
        """The hosts of the wiki's pages: links elsewhere are not the wiki's (bot.links)."""
        now = time.monotonic()
        if self._hosts is None or now - self._hosts[0] > WIKI_HOSTS_TTL_S:
            self._hosts = (now, wiki_hosts(await self.index.store.site_roots()))
        return self._hosts[1]

    @classmethod
    @asynccontextmanager
    async def open(
        cls, settings: Settings, *, db: Database | None = None, embedder: Embedder | None = None
    ) -> AsyncIterator[BotServices]:
        async with WikiIndex.open(settings, db=db, embedder=embedder) as index:
            answer_log, registry = AnswerLog(index.db), AdapterRegistry(index.db)
            llm = ChatLLM(settings)
            answerer = Answerer(index, answer_log, registry, llm, configured_servers(settings))
            try:
                yield cls(settings, index, answer_log, registry, answerer, FeedbackLog(index.db), Metrics())
            finally:
                await llm.aclose()
