"""One training run: snapshot the pairs, train a new adapter version, gate it, swap it in if it passes.

One run at a time across processes (a PostgreSQL advisory lock; a second run skips). The registry row is
created before training ('training') and changed only by single statements, and the active adapter changes
only in `promote`'s transaction after every server serves the new one: a run killed at any moment leaves the
active adapter serving. The next run marks what a killed one left ('training', 'candidate') as 'failed',
deletes the directories of those that never left training (no server ever loaded them) and unloads the rest.
"""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.config import Settings
from core.db import Database
from training.config import TrainingConfig
from training.datasets import PersonCap, build_snapshot, load_pairs, prune_snapshots
from training.answer_quality import answer_cases, decide_answers
from training.gate import GateDecision, GateMetrics, decide, evaluate, evaluate_answers, evaluate_candidate
from core.registry import AdapterRegistry, training_lock
from training.swap import AdapterSwap
from training.train import train_adapter

log = logging.getLogger(__name__)

GATE_ANSWER_TOKENS = 160  # longest held-out answer the answer gate generates (citations come early)


@dataclass
class CycleReport:
    status: str  # busy | skipped | rejected | promoted | failed
    message: str
    recovered: list[str] = field(default_factory=list)  # adapters a killed run left behind, now 'failed'
    dataset_id: int | None = None
    new_pairs: int | None = None
    used: dict[str, str] | None = None  # per split: "used of all" pairs, where TRAIN_MAX_PAIRS left some out
    adapter: str | None = None
    train: dict[str, Any] | None = None
    candidate: dict[str, Any] | None = None  # held-out metrics of the new adapter
    baseline: dict[str, Any] | None = None  # ... of the active adapter (or the base model)
    answers: dict[str, Any] | None = None  # the answer gate's figures: candidate and baseline
    previous: str | None = None  # the adapter it replaced
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [f"{self.status}: {self.message}"]
        if self.recovered:
            lines.append(f"  cleaned up after an interrupted run: {', '.join(self.recovered)} marked failed")
        if self.dataset_id is not None:
            lines.append(f"  dataset {self.dataset_id}: {self.new_pairs} new pairs")
        if self.used:
            used = ", ".join(f"{figures} {split}" for split, figures in self.used.items())
            lines.append(f"  pairs used: {used} (WIKIBOT_TRAIN_MAX_PAIRS)")
        if self.train:
            t = self.train
            lines.append(f"  {self.adapter}: {t['steps']} steps in {t['seconds']:.1f}s, final loss {t['loss']:.4f}")
        for label, m in (("candidate", self.candidate), ("baseline", self.baseline)):
            if m:
                figures = (f"accuracy {m['accuracy']:.3f}, margin {m['mean_margin']:.3f}, preferred answers' "
                           f"log-prob {m['chosen_logp']:.2f} on {m['n']} held-out pairs")  # fmt: skip
                lines.append(f"  {label}: {figures}")
        for label, a in (self.answers or {}).items():
            lines.append(f"  {label} answers: cite the right source {a['cites_right']:.2f}, any {a['cites_any']:.2f}, "
                         f"echo {a['echo']:.2f}, invalid {a['invalid']:.2f} on {a['n']} held-out prompts")
        lines.append(f"  took {self.seconds:.1f}s")
        return "\n".join(lines)


def heldout_budget(settings: Settings) -> int:
    """The held-out pairs a run is gated on: TRAIN_MAX_PAIRS in the held-out split's proportion."""
    fraction = settings.train_heldout_fraction
    return math.ceil(round(settings.train_max_pairs * fraction / (1 - fraction), 6))  # 24 x 0.2 / 0.8 is 6, not 7


async def recover_interrupted(db: Database) -> list[str]:
    """Mark runs a killed process left in 'training' or 'candidate' as 'failed' (call with the lock held:
    then no live run owns them). Directories of those never loaded anywhere ('training') are deleted."""
    registry = AdapterRegistry(db)
    recovered = []
    for adapter in await registry.with_status("training", "candidate"):
        await registry.set_failed(adapter.version, f"interrupted: the run was killed while in {adapter.status}")
        if adapter.status == "training":
            shutil.rmtree(adapter.path, ignore_errors=True)
            shutil.rmtree(adapter.path + ".partial", ignore_errors=True)
        log.warning("adapter %s was left in %s by a killed run: marked failed", adapter.name, adapter.status)
        recovered.append(adapter.name)
    return recovered


async def run_cycle(settings: Settings, db: Database, *, force: bool = False) -> CycleReport:
    """One training run (see the module docstring); `force` trains even with few new pairs."""
    if settings.base_model is None:
        raise ValueError("training is off: set WIKIBOT_BASE_MODEL to the model vLLM serves")
    config = TrainingConfig.from_settings(settings)  # a misconfiguration stops here, before any work
    swap = AdapterSwap.from_settings(settings, db)
    started = time.perf_counter()
    async with training_lock(db) as taken:
        if not taken:
            log.info("another training run holds the lock: skipping")
            return CycleReport("busy", "another training run is in progress; skipped")
        report = CycleReport("skipped", "", recovered=await recover_interrupted(db))
        await swap.unload_stale()
        await _train_gate_swap(settings, config, db, swap, report, force)
    report.seconds = time.perf_counter() - started
    log.info("training cycle %s: %s", report.status, report.message)
    return report


async def _gate_answers(
    settings: Settings, base_model: str, candidate: str, active: str | None, heldout: list[dict[str, Any]],
    metrics: dict[str, Any], passed: GateDecision,
) -> GateDecision:  # fmt: skip
    """The answer gate, after the preference gate passed: both adapters answer the held-out prompts."""
    cases = answer_cases(heldout)[: settings.gate_answer_prompts]
    tokens = min(settings.llm_max_tokens, GATE_ANSWER_TOKENS)
    new = await asyncio.to_thread(evaluate_answers, base_model, candidate, cases, tokens)
    old = await asyncio.to_thread(evaluate_answers, base_model, active, cases, tokens)
    metrics["answers"], metrics["baseline_answers"] = new.as_dict(), old.as_dict()
    promote, reason = decide_answers(new, old)
    return GateDecision(promote, f"{passed.reason}; {reason}" if promote else f"below the answer gate: {reason}")


async def _train_gate_swap(
    settings: Settings, config: TrainingConfig, db: Database, swap: AdapterSwap, report: CycleReport, force: bool
) -> None:
    base_model: str = settings.base_model  # type: ignore[assignment]  # checked by run_cycle
    snapshot = await build_snapshot(db, settings.train_heldout_fraction, cap=PersonCap.from_settings(settings))
    await prune_snapshots(db, settings.train_keep_datasets)  # only runs prune: this one is the newest, and kept
    report.dataset_id, report.new_pairs = snapshot.id, snapshot.new_pairs
    if snapshot.new_pairs < settings.train_min_new_pairs and not force:
        report.message = f"{snapshot.new_pairs} new pairs, fewer than {settings.train_min_new_pairs}"
        return
    train_pairs = await load_pairs(db, snapshot.id, "train", settings.train_max_pairs)
    heldout = await load_pairs(db, snapshot.id, "heldout", heldout_budget(settings))
    if not train_pairs:
        report.message = f"dataset {snapshot.id} has no training pairs"
        return
    used = {"train": len(train_pairs), "heldout": len(heldout)}
    stored = {split: sum(snapshot.splits[split].values()) for split in used}
    if used != stored:
        report.used = {split: f"{used[split]} of {stored[split]}" for split in used}

    registry = AdapterRegistry(db)
    active = await registry.active()
    adapter = await registry.create(settings.adapters_dir, snapshot.id)
    report.adapter = adapter.name
    metrics: dict[str, Any] = {"dataset_id": snapshot.id}
    try:
        result = await asyncio.to_thread(train_adapter, base_model, train_pairs, Path(adapter.path), config)
        report.train = metrics["train"] = result.as_dict()
        candidate, references = await asyncio.to_thread(
            evaluate_candidate, base_model, adapter.path, heldout, heldout + train_pairs
        )
        metrics["canary"] = [ref.as_dict() for ref in references]
        baseline: GateMetrics = await asyncio.to_thread(evaluate, base_model, active.path if active else None, heldout)
        report.candidate = metrics["heldout"] = candidate.as_dict()
        report.baseline = metrics["baseline"] = {**baseline.as_dict(), "model": active.name if active else "base"}
        decision = decide(candidate, baseline, settings)
        if decision.promote and settings.gate_answers:
            decision = await _gate_answers(settings, base_model, adapter.path, active.path if active else None,
                                           heldout, metrics, decision)  # fmt: skip
            report.answers = {"candidate": metrics["answers"], "baseline": metrics["baseline_answers"]}
        metrics["gate"] = decision.reason
        if not decision.promote:
            await registry.set_rejected(adapter.version, metrics, decision.reason)
            report.status, report.message = "rejected", f"{adapter.name} {decision.reason}"
            return
        await registry.set_candidate(adapter.version, metrics)
        swapped = await swap.activate(adapter.version)
    except Exception as exc:  # any failure: the row says why, the active adapter is untouched
        log.exception("training run for %s failed", adapter.name)
        await registry.set_failed(adapter.version, f"{type(exc).__name__}: {exc}", metrics)
        report.status, report.message = "failed", f"{adapter.name}: {exc}"
        return
    report.status, report.previous = "promoted", swapped.retired
    report.message = f"{adapter.name} is active ({decision.reason})"
