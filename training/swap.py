"""Hot-swapping adapters into the running vLLM servers, with no request dropped, and putting lost ones back.

A swap (`activate`) loads the new adapter under its own name on every server next to the old one, sends each
server a canary request with it, and only then flips the registry in one transaction: the bot reads the
active name on every question, so the next question uses the new adapter and questions already sent keep
the old name, which stays loaded. The old adapter is unloaded once it has been retired for
`adapter_unload_grace_seconds` (`unload_stale`, run by `reconcile` every minute and by each training cycle). If
any server fails to load or answer, the new name is unloaded everywhere and nothing changes. Adapter directories
are never deleted here.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from core.config import Settings
from core.db import Database, redact
from core.canary import Reference
from core.registry import PROMOTABLE, Adapter, AdapterRegistry, RegistryError, training_lock
from core.vllm_adapters import AdapterLoadError, VLLMAdapters, configured_servers

log = logging.getLogger(__name__)


class SwapError(RuntimeError):
    """The new adapter could not be served everywhere; the previous one stays active."""


@dataclass(frozen=True)
class SwapReport:
    activated: str | None  # served name now active (None: the base model)
    retired: str | None  # the name it replaced, unloaded after the grace period
    servers: list[str]
    seconds: float  # load, canary and registry flip

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Reconciled:
    reloaded: list[str] = field(default_factory=list)  # servers that had lost the active adapter
    unloaded: list[str] = field(default_factory=list)  # "name@server" for adapters no longer needed


def vllm_servers(settings: Settings) -> VLLMAdapters:
    """Every configured vLLM server: training cannot swap an adapter in without one."""
    if (servers := configured_servers(settings)) is None:
        raise ValueError("no vLLM server is configured: set WIKIBOT_VLLM_URLS or WIKIBOT_LLM_BASE_URL")
    return servers


async def _load_and_check(servers: VLLMAdapters, adapter: Adapter, tolerance: float) -> None:
    """Load the adapter on every server and check that each serves it as trained (its canary references; a plain
    request for an adapter recorded without them); on any failure unload it everywhere and raise."""
    references = [Reference.from_dict(ref) for ref in adapter.metrics.get("canary", [])]
    try:
        await servers.load_everywhere(adapter.name, adapter.path)
        if references:
            worst = await servers.check_served(adapter.name, references, tolerance)
            log.info("%s is served as trained: log-probabilities within %.2g of the trainer's", adapter.name, worst)
        else:
            await servers.canary_everywhere(adapter.name)
    except AdapterLoadError as exc:
        await servers.unload_everywhere(adapter.name)
        raise SwapError(f"{adapter.name} was not activated: {exc}") from exc


class AdapterSwap:
    """Swaps on the configured vLLM servers, with the registry on `db`: built once from the settings."""

    def __init__(self, servers: VLLMAdapters, db: Database, canary_tolerance: float, unload_grace_seconds: float):
        self.servers, self.registry = servers, AdapterRegistry(db)
        self.canary_tolerance, self.unload_grace_seconds = canary_tolerance, unload_grace_seconds

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> AdapterSwap:
        return cls(vllm_servers(settings), db, settings.canary_tolerance, settings.adapter_unload_grace_seconds)

    async def activate(self, version: int) -> SwapReport:
        """Serve adapter `version` on every server, then make it the active one (the caller holds the training
        lock)."""
        adapter = await self.registry.get(version)
        if adapter.status not in PROMOTABLE:  # before loading: a failed swap unloads the name (never the active one)
            raise RegistryError(f"{adapter.name} cannot be promoted: it is {adapter.status}")
        started = time.perf_counter()
        await _load_and_check(self.servers, adapter, self.canary_tolerance)
        previous = await self.registry.promote(version)
        report = SwapReport(
            adapter.name, previous.name if previous else None, [s.base_url for s in self.servers.servers],
            time.perf_counter() - started,
        )  # fmt: skip
        log.info("activated %s (was %s) on %d server(s) in %.2fs", adapter.name, report.retired,
                 len(report.servers), report.seconds)  # fmt: skip
        return report

    async def rollback(self) -> SwapReport:
        """Retire the active adapter for its parent (or the newest older retired one, or the base model), loading
        that one everywhere first (the caller holds the training lock)."""
        target = await self.registry.rollback_target()
        started = time.perf_counter()
        if target is not None:
            await _load_and_check(self.servers, target, self.canary_tolerance)
        retired, activated = await self.registry.rollback(target.version if target else None)
        report = SwapReport(
            activated.name if activated else None, retired.name, [s.base_url for s in self.servers.servers],
            time.perf_counter() - started,
        )  # fmt: skip
        log.info("rolled back from %s to %s", retired.name, report.activated or "the base model")
        return report

    async def unload_stale(self) -> list[str]:
        """Unload, wherever loaded, adapters no request should use: retired past the grace period, rejected,
        failed. Only while holding the training lock (a swap in progress loads names the registry does not yet
        show)."""
        stale = {a.name for a in await self.registry.unloadable(self.unload_grace_seconds)}
        unloaded = []
        for server in self.servers.servers:
            try:
                for name in sorted(stale & (await self.servers.served_models(server)).keys()):
                    await self.servers.unload(server, name)
                    unloaded.append(f"{name}@{server.name}")
            except httpx.HTTPError as exc:
                log.warning("could not unload stale adapters on %s: %s", server.name, redact(str(exc)))
        if unloaded:
            log.info("unloaded %s", ", ".join(unloaded))
        return unloaded

    async def reconcile(self) -> Reconciled:
        """Load the active adapter where a (restarted) server lacks it; unload stale ones unless a swap is
        running."""
        active = await self.registry.active()
        reloaded = []
        if active is not None:
            reloaded = await self.servers.ensure_loaded(active.name, active.path)
            if reloaded:
                log.warning("reloaded the active adapter %s on %s", active.name, ", ".join(reloaded))
        async with training_lock(self.registry.db) as taken:
            unloaded = await self.unload_stale() if taken else []
        return Reconciled(reloaded, unloaded)
