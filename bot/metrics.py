"""Prometheus metrics of a wikibot process, in a registry of its own (no module-level globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.answer import Answer
from core.registry import AdapterRegistry

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.questions = Counter(
            "wikibot_questions", "Questions answered, by outcome", ["status"], registry=self.registry
        )
        self.latency = Histogram(
            "wikibot_answer_latency_seconds",
            "Time to answer, by stage (retrieval, generation, total)",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.feedback = Counter("wikibot_feedback", "Feedback received, by kind", ["kind"], registry=self.registry)
        self.active_adapter = Gauge(
            "wikibot_active_adapter_version", "Version of the adapter answering (0: base model)", registry=self.registry
        )
        self.adapters = Gauge(
            "wikibot_adapters",
            "Adapters in the registry by status: one per training run, so these are the runs' outcomes",
            ["status"],
            registry=self.registry,
        )

    def observe_answer(self, answer: Answer) -> None:
        self.questions.labels(answer.status).inc()
        for stage in ("retrieval", "generation", "total"):
            self.latency.labels(stage).observe(answer.timings.get(f"{stage}_ms", 0.0) / 1000)

    async def refresh_from_database(self, registry: AdapterRegistry) -> None:
        """Training-side numbers live in PostgreSQL (the scheduler may run elsewhere): read them per scrape."""
        active, counts = await registry.serving(), await registry.status_counts()
        self.active_adapter.set(active.version if active else 0)
        for status in ("training", "candidate", "active", "retired", "failed", "rejected"):
            self.adapters.labels(status).set(counts.get(status, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
