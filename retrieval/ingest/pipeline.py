"""Incremental ingestion: only new or changed pages are chunked and embedded; deleted pages are removed."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from retrieval.embed import Embedder
from retrieval.ingest.chunking import SectionChunker
from retrieval.ingest.sources import load_source
from retrieval.models import SourcePage
from retrieval.store import WikiStore

PAGES_PER_BATCH = 32  # pages whose new chunks are embedded together


@dataclass
class IngestReport:
    source: str
    space: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks_written: int = 0
    chunks_embedded: int = 0
    reembedded: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [
            f"{self.source} -> space {self.space!r}: {len(self.added)} added, {len(self.updated)} updated, "
            f"{self.unchanged} unchanged, {len(self.deleted)} deleted, {len(self.failed)} failed "
            f"({self.chunks_written} chunks written, {self.chunks_embedded} embedded) in {self.seconds:.1f}s"
        ]
        if self.reembedded:
            lines.append(f"re-embedded {self.reembedded} chunks for the new embedding model")
        lines += [f"  skipped {path}: {reason}" for path, reason in self.failed]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {**self.__dict__, "failed": [{"path": p, "reason": r} for p, r in self.failed]}


class Ingestor:
    def __init__(self, store: WikiStore, embedder: Embedder, chunker: SectionChunker, progress: bool = False):
        self.store = store
        self.embedder = embedder
        self.chunker = chunker
        self.progress = progress

    async def ingest(self, path: Path, space: str, base_url: str | None = None) -> IngestReport:
        """Bring `space` in line with the source at `path`. Raises SourceError before touching the index."""
        started = time.perf_counter()
        loaded = await asyncio.to_thread(load_source, path, base_url)
        report = IngestReport(source=loaded.root, space=space, failed=loaded.failures)
        await self.store.use_embedding_model(self.embedder.model_name, self.embedder.dimensions)

        known = await self.store.page_hashes(space, loaded.root)
        todo: list[SourcePage] = []
        for page in loaded.pages:
            if known.get(page.page_key) == page.content_hash:
                report.unchanged += 1
            else:
                todo.append(page)
                (report.updated if page.page_key in known else report.added).append(page.page_key)

        with self._bar(len(todo), "pages") as bar:
            for start in range(0, len(todo), PAGES_PER_BATCH):
                batch = todo[start : start + PAGES_PER_BATCH]
                await self._write_pages(space, loaded.root, batch, report)
                bar.update(len(batch))

        # a failed file keeps its indexed version: only pages gone from the source are deleted
        present = {p.page_key for p in loaded.pages}
        failed_keys = {_key_of(path, loaded.root) for path, _ in loaded.failures}
        report.deleted = sorted(set(known) - present - failed_keys)
        await self.store.delete_pages(space, report.deleted)

        report.reembedded = await self.embed_missing()
        if todo or report.deleted or report.reembedded:
            await self.store.analyze()
        report.seconds = time.perf_counter() - started
        return report

    async def _write_pages(self, space: str, root: str, pages: list[SourcePage], report: IngestReport) -> None:
        chunked = [(page, self.chunker.split(page)) for page in pages]
        hashes = list({c.content_hash for _, chunks in chunked for c in chunks})
        vectors = await self.store.known_embeddings(hashes)
        missing = [h for h in hashes if h not in vectors]
        if missing:
            texts = {c.content_hash: c.embedding_input for _, chunks in chunked for c in chunks}
            new = await asyncio.to_thread(self.embedder.embed_documents, [texts[h] for h in missing])
            vectors.update(zip(missing, new, strict=True))
            report.chunks_embedded += len(missing)
        for page, chunks in chunked:
            await self.store.replace_page(space, root, page, chunks, [vectors[c.content_hash] for c in chunks])
            report.chunks_written += len(chunks)

    async def embed_missing(self) -> int:
        """Embed chunks left without a vector (after an embedding model change); returns how many."""
        total = (await self.store.counts())["unembedded"]
        with self._bar(total, "chunks re-embedded") as bar:
            while rows := await self.store.chunks_without_embedding(self.embedder.batch_size * 8):
                vectors = await asyncio.to_thread(self.embedder.embed_documents, [text for _, text in rows])
                await self.store.set_embeddings([(i, v) for (i, _), v in zip(rows, vectors, strict=True)])
                bar.update(len(rows))
        return total

    def _bar(self, total: int, unit: str) -> tqdm:
        return tqdm(total=total, unit=f" {unit}", file=sys.stderr, disable=not self.progress or total == 0)


def _key_of(path: str, root: str) -> str:
    """The page key a failed file would have had (its path below the root, without suffix)."""
    file = Path(path)
    try:
        return file.relative_to(root).with_suffix("").as_posix()
    except ValueError:
        return path.rsplit("#", 1)[-1]  # a page inside a dump: "dump.xml#Title"
