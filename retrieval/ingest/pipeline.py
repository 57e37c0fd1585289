"""Incremental ingestion: only new or changed pages are chunked and embedded; deleted pages are removed."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from retrieval.embed import Embedder
from retrieval.ingest.chunking import SectionChunker
from retrieval.ingest.sources import LoadedSource, load_source
from retrieval.models import Chunk, SourcePage
from retrieval.store import WikiStore

PAGES_PER_BATCH = 32  # pages chunked together; their new chunks are embedded in page order
EMBED_SLICE = 16  # chunks embedded between checks for stop() (Ctrl-C): about a second on a CPU
SUMMARY_LINES = 20  # pages listed per kind (skipped, failed, deleted) in the summary; --json lists them all


class TooManyDeletions(ValueError):
    """A run would delete more than the allowed share of a space's pages (a source cut short?)."""


@dataclass
class IngestReport:
    source: str
    space: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): nothing to index, or too large
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): unreadable, indexed version kept
    deleted: list[str] = field(default_factory=list)
    interrupted: bool = False  # stopped (Ctrl-C) before the end: pages written so far stay, nothing deleted
    chunks_written: int = 0
    chunks_embedded: int = 0
    reembedded: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [
            f"{self.source} -> space {self.space!r}: {len(self.added) + len(self.updated)} ingested "
            f"({len(self.added)} new, {len(self.updated)} updated), {self.unchanged} unchanged, "
            f"{len(self.skipped)} skipped, {len(self.failed)} failed, {len(self.deleted)} deleted "
            f"({self.chunks_written} chunks written, {self.chunks_embedded} embedded) in {self.seconds:.1f}s"
        ]
        if self.interrupted:
            lines.append("interrupted: the pages ingested so far are kept, nothing was deleted; run again to finish")
        if self.reembedded:
            lines.append(f"re-embedded {self.reembedded} chunks for the new embedding model")
        lines += _listed("skipped", [f"{path}: {reason}" for path, reason in self.skipped])
        lines += _listed("failed", [f"{path}: {reason}" for path, reason in self.failed])
        lines += _listed("deleted", self.deleted)
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            **self.__dict__,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
        }


def _listed(kind: str, items: list[str]) -> list[str]:
    lines = [f"  {kind} {item}" for item in items[:SUMMARY_LINES]]
    if len(items) > SUMMARY_LINES:
        lines.append(f"  ... and {len(items) - SUMMARY_LINES} more {kind} (--json lists them all)")
    return lines


@dataclass
class _Target:
    """Where a run stores pages, and what it reports."""

    space: str
    root: str
    known: dict[str, str]  # page key -> content hash of the pages indexed before
    report: IngestReport
    bar: tqdm


class Ingestor:
    def __init__(
        self,
        store: WikiStore,
        embedder: Embedder,
        chunker: SectionChunker,
        progress: bool = False,
        max_page_bytes: int | None = None,
        max_delete_share: float = 1.0,
    ):
        self.store = store
        self.embedder = embedder
        self.chunker = chunker
        self.progress = progress
        self.max_page_bytes = max_page_bytes
        self.max_delete_share = max_delete_share
        self._stop = threading.Event()

    def stop(self) -> None:
        """Stop soon (within one embedding slice): pages written so far stay, nothing more is written or deleted."""
        self._stop.set()

    async def ingest(
        self, path: Path, space: str, base_url: str | None = None, *, allow_mass_deletion: bool = False
    ) -> IngestReport:
        """Bring `space` in line with the source at `path`.

        Raises SourceError or TooManyDeletions before touching the index. After `stop()`, returns what was done
        (`interrupted`).
        """
        started = time.perf_counter()
        loaded = await asyncio.to_thread(load_source, path, base_url, self.max_page_bytes, self._stop)
        report = IngestReport(source=loaded.root, space=space, skipped=loaded.skipped, failed=loaded.failures)
        known = await self.store.page_hashes(space, loaded.root)
        doomed = _deletions(loaded, known)
        if not allow_mass_deletion:
            self._check_deletions(report, len(doomed), len(known))
        await self.store.use_embedding_model(self.embedder.model_name, self.embedder.dimensions)

        todo: list[SourcePage] = []
        for page in loaded.pages:
            if known.get(page.page_key) == page.content_hash:
                report.unchanged += 1
            else:
                todo.append(page)

        todo.sort(key=lambda page: len(page.body))  # small pages first: a large one holds up no other
        with self._bar(len(todo), "pages") as bar:
            target = _Target(space, loaded.root, known, report, bar)
            for start in range(0, len(todo), PAGES_PER_BATCH):
                if self._stop.is_set():
                    break
                await self._write_pages(target, todo[start : start + PAGES_PER_BATCH])

        if not self._stop.is_set():
            report.deleted = doomed
            await self.store.delete_pages(space, doomed)
            report.reembedded = await self.embed_missing()
        report.interrupted = self._stop.is_set()
        if report.added or report.updated or report.deleted or report.reembedded:
            await self.store.analyze()
        report.seconds = time.perf_counter() - started
        return report

    def _check_deletions(self, report: IngestReport, deleting: int, indexed: int) -> None:
        if indexed and deleting / indexed > self.max_delete_share:
            raise TooManyDeletions(
                f"{report.source}: this run would delete {deleting} of the {indexed} pages of space {report.space!r} "
                f"read from it ({deleting / indexed:.0%}), more than WIKIBOT_INGEST_MAX_DELETE_SHARE "
                f"({self.max_delete_share:.0%}); nothing was changed. If those pages are really gone, run again "
                "with --allow-mass-deletion"
            )

    async def _write_pages(self, target: _Target, pages: list[SourcePage]) -> None:
        """Chunk, embed and store `pages`, each as soon as its chunks have vectors, until `stop()`."""
        chunked = await asyncio.to_thread(lambda: [(page, self.chunker.split(page)) for page in pages])
        texts = {c.content_hash: c.embedding_input for _, chunks in chunked for c in chunks}  # in page order
        vectors = await self.store.known_embeddings(list(texts))
        missing = [h for h in texts if h not in vectors]
        waiting = chunked
        for start in range(0, len(missing), EMBED_SLICE):
            waiting = await self._store_ready(target, waiting, vectors)
            if self._stop.is_set():
                return
            part = missing[start : start + EMBED_SLICE]
            new = await asyncio.to_thread(self.embedder.embed_documents, [texts[h] for h in part])
            vectors.update(zip(part, new, strict=True))
            target.report.chunks_embedded += len(part)
        await self._store_ready(target, waiting, vectors)

    async def _store_ready(
        self, target: _Target, waiting: list[tuple[SourcePage, list[Chunk]]], vectors: dict[str, Sequence[float]]
    ) -> list[tuple[SourcePage, list[Chunk]]]:
        """Store the leading pages of `waiting` whose chunks all have vectors; returns the others."""
        for n, (page, chunks) in enumerate(waiting):
            if any(c.content_hash not in vectors for c in chunks):
                return waiting[n:]
            await self.store.replace_page(
                target.space, target.root, page, chunks, [vectors[c.content_hash] for c in chunks]
            )
            (target.report.updated if page.page_key in target.known else target.report.added).append(page.page_key)
            target.report.chunks_written += len(chunks)
            target.bar.update(1)
        return []

    async def embed_missing(self) -> int:
        """Embed chunks left without a vector (after an embedding model change); returns how many."""
        total = (await self.store.counts())["unembedded"]
        done = 0
        with self._bar(total, "chunks re-embedded") as bar:
            while not self._stop.is_set():
                if not (rows := await self.store.chunks_without_embedding(EMBED_SLICE)):
                    break
                vectors = await asyncio.to_thread(self.embedder.embed_documents, [text for _, text in rows])
                await self.store.set_embeddings([(i, v) for (i, _), v in zip(rows, vectors, strict=True)])
                bar.update(len(rows))
                done += len(rows)
        return done

    def _bar(self, total: int, unit: str) -> tqdm:
        return tqdm(total=total, unit=f" {unit}", file=sys.stderr, disable=not self.progress or total == 0)


def _deletions(loaded: LoadedSource, known: dict[str, str]) -> list[str]:
    """Indexed pages gone from the source. Only a completely read source says a page is gone; a page that could
    not be read (failed, too large) keeps its indexed version; a page now without text (a redirect) is deleted."""
    if not loaded.complete:
        return []
    return sorted(set(known) - {page.page_key for page in loaded.pages} - loaded.keep)
