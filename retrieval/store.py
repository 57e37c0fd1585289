"""Every SQL statement on the wiki index (pages, chunks, embeddings). Bound parameters only."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

import numpy as np
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from core.db import Database
from retrieval.models import Chunk, RelevanceLabel, SearchHit, SourcePage, embedding_input
from retrieval.rank import reciprocal_rank_fusion, spread_over_pages

# The tables with vectors of the index's embedding model, and their HNSW indexes: retyped when it changes.
_VECTOR_TABLES = (("chunks", "chunks_embedding_hnsw"), ("search_labels", "search_labels_embedding_hnsw"))
# Full-text ranking ORs the question's stemmed words (questions rarely match every word), so a common word
# matches much of the wiki and ranking all of it would be slow. Only the rarer words pick the chunks to
# rank (`WordLimits`): the rarest word, then those in at most `share` of the chunks, rarest first, while
# their estimated matches stay within `matches` (from PostgreSQL's statistics of chunks.tsv, where a word
# too rare to be listed counts as 0, so it always picks). Every word counts in the rank: BM25 over the
# chunk's title, section path and text, a word in the title counting 3 times (k1 1.2, b 0.75; without the
# title's weight the sample wiki, whose titles name its products, lost 5 of 118 questions' pages in text
# search; the 18F handbook is no worse with it); a word's document frequency from the statistics,
# or counted among the picked chunks for a word too rare to be listed, which all contain it; a chunk's
# length is its number of distinct words, against the mean in fulltext_stats). Text search alone ranks
# the right page first for 0.75 of the 18F handbook's questions, with ts_rank_cd 0.58 (README, Benchmarks).
_BM25 = {"k1": 1.2, "b": 0.75, "title": 3}
_TEXT_RANKING = """
WITH words AS (
    SELECT w.word, coalesce(s.share, 0) AS share, coalesce(s.share, 0) * t.rows AS matches, t.rows
    FROM unnest(tsvector_to_array(to_tsvector('english', %(q)s))) AS w (word)
    CROSS JOIN (SELECT greatest(reltuples, 0) AS rows FROM pg_class WHERE oid = 'chunks'::regclass) AS t
    LEFT JOIN (
        SELECT e.word, e.share
        FROM pg_stats AS p, unnest(p.most_common_elems::text::text[], p.most_common_elem_freqs) AS e (word, share)
        WHERE p.schemaname = current_schema() AND p.tablename = 'chunks' AND p.attname = 'tsv'
    ) AS s USING (word)
), picked AS (
    SELECT word, share, row_number() OVER rarest AS n, sum(matches) OVER rarest AS total
    FROM words WINDOW rarest AS (ORDER BY matches, word)
), query AS (  -- array_to_tsvector(...)::text quotes a word as tsquery input
    SELECT array_agg(word) AS words, string_agg(array_to_tsvector(ARRAY[word])::text, ' | ')
        FILTER (WHERE n = 1 OR (share <= %(share)s AND total <= %(matches)s))::tsquery AS rare
    FROM picked
), found AS (  -- each picked chunk's words of the question with their counts (setweight + ts_filter keep them)
    SELECT c.id, c.space, length(c.tsv) AS words, f.lexeme AS word,
        cardinality(f.positions) + CASE WHEN f.lexeme = ANY(t.words) THEN %(title)s - 1 ELSE 0 END AS tf
    FROM chunks AS c, query AS q, tsvector_to_array(ts_filter(c.tsv, '{{a}}')) AS t (words),  -- the title's
        unnest(ts_filter(setweight(setweight(c.tsv, 'D'), 'A', q.words), '{{a}}')) AS f
    WHERE c.tsv @@ q.rare
), counted AS (
    SELECT word, count(*) AS n FROM found GROUP BY word
), idf AS MATERIALIZED (  -- once per word, not per found row
    SELECT w.word, ln(1 + (greatest(w.rows, d.n) - d.n + 0.5) / (d.n + 0.5)) AS idf
    FROM words AS w LEFT JOIN counted AS c USING (word),
        LATERAL (SELECT CASE WHEN w.share > 0 THEN w.share * w.rows ELSE coalesce(c.n, 0) END) AS d (n)
)
SELECT f.id, sum(
    i.idf * f.tf * (%(k1)s + 1) / (f.tf + %(k1)s * (1 - %(b)s + %(b)s * f.words / coalesce(s.mean_words, f.words)))
) AS r
FROM found AS f JOIN idf AS i USING (word) LEFT JOIN fulltext_stats AS s ON true
WHERE true {where}
GROUP BY f.id ORDER BY r DESC, f.id LIMIT %(n)s
"""
# Chunks that people's corrections named as the right source for questions like this one (migration 0010), the
# label of the most similar question first: per label, its section's chunk (the first if the section was split),
# or the page's first chunk if the section is gone.
# The nearest labels come through the HNSW index, then those alike enough count.
_LABEL_RANKING = """
SELECT c.id FROM (
    SELECT page_id, url, max(similarity) AS similarity FROM (
        SELECT page_id, url, 1 - (embedding <=> %(v)s) AS similarity FROM search_labels
        ORDER BY embedding <=> %(v)s LIMIT %(n)s
    ) AS nearest
    WHERE similarity >= %(similarity)s GROUP BY page_id, url
) AS l
CROSS JOIN LATERAL (
    SELECT id FROM chunks c WHERE c.page_id = l.page_id {where} ORDER BY c.url = l.url DESC, c.position LIMIT 1
) AS c
ORDER BY l.similarity DESC, c.id LIMIT %(n)s
"""
_HIT_COLUMNS = "c.id AS chunk_id, c.page_id, c.space, c.title, c.section, c.url, c.text"


@dataclass(frozen=True)
class WordLimits:
    """Which of a question's words pick full-text candidates (see _TEXT_RANKING)."""

    share: float  # words in more of the chunks than this share are too common to pick
    matches: int  # the picking words' estimated matches stay within this many chunks


class EmbeddingModelMismatch(RuntimeError):
    """The index was embedded with another model than the configured one."""


class WikiStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- embedding model ----------------------------------------------------------------------
    async def embedding_model(self) -> tuple[str, int] | None:
        async with self.db.connection() as conn:
            cur = await conn.execute("SELECT model, dimensions FROM embedding_index")
            row = await cur.fetchone()
        return (row[0], row[1]) if row else None

    async def use_embedding_model(self, model: str, dimensions: int) -> bool:
        """Record the model; if it differs from the one in use, clear all vectors (to be re-embedded).

        Returns True when the vectors were cleared.
        """
        if await self.embedding_model() == (model, dimensions):
            return False
        async with self.db.connection() as conn, conn.transaction():
            for _, index in _VECTOR_TABLES:
                await conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index)))
            await conn.execute("UPDATE chunks SET embedding = NULL")
            await conn.execute("DELETE FROM search_labels")  # embedded by the old model: rebuilt by the next refresh
            for table, _ in _VECTOR_TABLES:
                await conn.execute(
                    sql.SQL("ALTER TABLE {} ALTER COLUMN embedding TYPE vector({})").format(
                        sql.Identifier(table), sql.Literal(dimensions)
                    )
                )
            await conn.execute(
                "INSERT INTO embedding_index (model, dimensions) VALUES (%s, %s)"
                " ON CONFLICT (singleton) DO UPDATE SET model = EXCLUDED.model,"
                " dimensions = EXCLUDED.dimensions, updated_at = now()",
                (model, dimensions),
            )
            for table, index in _VECTOR_TABLES:
                await conn.execute(
                    sql.SQL("CREATE INDEX {} ON {} USING hnsw (embedding vector_cosine_ops)").format(
                        sql.Identifier(index), sql.Identifier(table)
                    )
                )
        return True

    async def check_embedding_model(self, model: str) -> None:
        current = await self.embedding_model()
        if current is not None and current[0] != model:
            raise EmbeddingModelMismatch(
                f"the wiki index was embedded with {current[0]!r}, but {model!r} is configured; "
                "run `wikibot ingest` to re-embed it, or configure the old model again"
            )

    # --- pages and chunks ---------------------------------------------------------------------
    async def page_hashes(self, space: str, source_root: str) -> dict[str, str]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT page_key, content_hash FROM pages WHERE space = %s AND source_root = %s",
                (space, source_root),
            )
            return dict(await cur.fetchall())

    async def known_embeddings(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors already computed for these chunk texts: unchanged sections are not embedded again."""
        if not hashes:
            return {}
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT DISTINCT ON (content_hash) content_hash, embedding FROM chunks"
                " WHERE content_hash = ANY(%s) AND embedding IS NOT NULL",
                (list(hashes),),
            )
            return dict(await cur.fetchall())

    async def replace_page(
        self, space: str, source_root: str, page: SourcePage, chunks: Sequence[Chunk], vectors: Sequence
    ) -> None:
        """Insert or update a page and swap its chunks, in one transaction."""
        async with self.db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO pages (space, page_key, source_root, title, url, content_hash)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (space, page_key) DO UPDATE SET source_root = EXCLUDED.source_root,"
                " title = EXCLUDED.title, url = EXCLUDED.url, content_hash = EXCLUDED.content_hash,"
                " updated_at = now()"
                " RETURNING id",
                (space, page.page_key, source_root, page.title, page.url, page.content_hash),
            )
            (page_id,) = await cur.fetchone()  # type: ignore[misc]
            await conn.execute("DELETE FROM chunks WHERE page_id = %s", (page_id,))
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO chunks (page_id, space, position, title, section, url, text, content_hash, embedding)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        (page_id, space, c.position, c.title, c.section, c.url, c.text, c.content_hash, v)
                        for c, v in zip(chunks, vectors, strict=True)
                    ],
                )

    async def delete_pages(self, space: str, page_keys: Sequence[str]) -> int:
        if not page_keys:
            return 0
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM pages WHERE space = %s AND page_key = ANY(%s)", (space, list(page_keys))
            )
            return cur.rowcount

    async def chunks_without_embedding(self, limit: int) -> list[tuple[int, str]]:
        """(chunk id, text to embed) of chunks whose vectors were cleared by a model change."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT id, title, section, text FROM chunks WHERE embedding IS NULL ORDER BY id LIMIT %s", (limit,)
            )
            return [(row[0], embedding_input(row[1], row[2], row[3])) for row in await cur.fetchall()]

    async def set_embeddings(self, rows: Sequence[tuple[int, Sequence[float]]]) -> None:
        async with self.db.connection() as conn, conn.cursor() as cur:
            await cur.executemany(
                "UPDATE chunks SET embedding = %s WHERE id = %s", [(np.asarray(v), i) for i, v in rows]
            )

    async def analyze(self) -> None:
        """Refresh the statistics of chunks: full-text search picks and weighs its words by them (_TEXT_RANKING)."""
        async with self.db.connection() as conn:
            await conn.execute("ANALYZE chunks")
            await conn.execute(
                "INSERT INTO fulltext_stats (mean_words) SELECT avg(length(tsv)) FROM chunks HAVING count(*) > 0"
                " ON CONFLICT (singleton) DO UPDATE SET mean_words = EXCLUDED.mean_words, updated_at = now()"
            )

    async def site_roots(self) -> list[str]:
        """The distinct "scheme://host" starts of the pages' URLs: where the wiki is."""
        async with self.db.connection() as conn:
            cur = await conn.execute("SELECT DISTINCT substring(url from '^[^:/?#]+://[^/?#]*') FROM pages")
            return [row[0] for row in await cur.fetchall() if row[0]]

    async def counts(self) -> dict[str, int]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM pages), (SELECT count(*) FROM chunks),"
                " (SELECT count(*) FROM chunks WHERE embedding IS NULL)"
            )
            pages, chunks, unembedded = await cur.fetchone()  # type: ignore[misc]
        return {"pages": pages, "chunks": chunks, "unembedded": unembedded}

    # --- relevance labels (what corrections said was the right source) ---------------------------
    async def labels(self) -> dict[RelevanceLabel, np.ndarray]:
        """The labels search uses now, each with its question's embedding."""
        async with self.db.connection() as conn:
            cur = await conn.execute("SELECT feedback_id, question, page_id, url, embedding FROM search_labels")
            return {RelevanceLabel(*row[:4]): row[4].to_numpy() for row in await cur.fetchall()}

    async def replace_labels(self, labels: Sequence[RelevanceLabel], vectors: Sequence[Sequence[float]]) -> int:
        """Make these the labels search uses, each with its question's embedding; return how many were kept
        (those of pages since deleted are not)."""
        async with self.db.connection() as conn, conn.transaction():
            await conn.execute("LOCK TABLE search_labels IN EXCLUSIVE MODE")  # one refresh at a time; reads go on
            await conn.execute("DELETE FROM search_labels")
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO search_labels (feedback_id, page_id, url, question, embedding)"
                    " SELECT %s, id, %s, %s, %s FROM pages WHERE id = %s ON CONFLICT DO NOTHING",
                    [
                        (label.feedback_id, label.url, label.question, np.asarray(v, dtype=np.float32), label.page_id)
                        for label, v in zip(labels, vectors, strict=True)
                    ],
                )
            cur = await conn.execute("SELECT count(*) FROM search_labels")
            (kept,) = await cur.fetchone()  # type: ignore[misc]
        return kept

    async def label_ranking(
        self, conn: AsyncConnection, vector: Sequence[float], similarity: float, limit: int,
        spaces: Sequence[str] | None,
    ) -> list[int]:
        """Chunk ids that corrections named right for questions at least `similarity` alike (_LABEL_RANKING)."""
        where, params = _space_filter(spaces)
        cur = await conn.execute(
            _LABEL_RANKING.format(where=where),  # `space` is the chunk's: labels have none
            {"v": np.asarray(vector, dtype=np.float32), "similarity": similarity, "n": limit, **params},
        )
        return [row[0] for row in await cur.fetchall()]

    # --- search -------------------------------------------------------------------------------
    async def vector_ranking(
        self, conn: AsyncConnection, vector: Sequence[float], limit: int, spaces: Sequence[str] | None
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity), nearest first, through the HNSW index."""
        where, params = _space_filter(spaces)
        cur = await conn.execute(
            "SELECT id, 1 - (embedding <=> %(v)s) FROM chunks"
            f" WHERE embedding IS NOT NULL {where} ORDER BY embedding <=> %(v)s LIMIT %(n)s",
            {"v": np.asarray(vector, dtype=np.float32), "n": limit, **params},
        )
        return [(row[0], float(row[1])) for row in await cur.fetchall()]

    async def text_ranking(
        self, conn: AsyncConnection, query: str, limit: int, spaces: Sequence[str] | None, words: WordLimits
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) for chunks sharing the query's rarer words, best first."""
        where, params = _space_filter(spaces)
        cur = await conn.execute(
            _TEXT_RANKING.format(where=where),
            {"q": query, "n": limit, "share": words.share, "matches": words.matches, **_BM25, **params},
        )
        return [(row[0], float(row[1])) for row in await cur.fetchall()]

    async def hybrid_search(
        self,
        query: str,
        vector: Awaitable[Sequence[float]] | None,
        *,
        k: int,
        candidates: int,
        rrf_k: int,
        words: WordLimits,
        per_page: int | None = None,
        spaces: Sequence[str] | None = None,
        mode: str = "hybrid",
        in_thread: tuple[str, Awaitable[Sequence[float]] | None] | None = None,
        label_similarity: float | None = None,
        label_weight: float = 1.0,
    ) -> list[SearchHit]:
        """Vector and full-text candidates fused by reciprocal rank; `mode` may pick one of them alone. With
        `per_page`, at most that many of the k hits come from one page while other pages are found. With
        `in_thread` (the query with the thread's earlier question, and its embedding), that is ranked the same
        ways and fused too: a follow-up that names no topic ("and on Premier?") finds the thread's. With
        `label_similarity`, the sources corrections named right for questions at least that similar to this one
        (by embedding) are a ranking of their own, fused too, with `label_weight`.

        `vector`, the query's embedding (None: no vector search), is awaited after the full-text query, so
        that the embedding can be computed while PostgreSQL runs it.
        """
        rankings: dict[str, list[int]] = {}
        similarity: dict[int, float] = {}
        async with self.db.connection() as conn:
            queries = [("", query, vector)] + ([("thread ", *in_thread)] if in_thread else [])
            labelled: list[int] = []
            for name, text_query, query_vector in queries:
                text = None
                if mode != "vector":
                    text = await self.text_ranking(conn, text_query, candidates, spaces, words)
                if query_vector is not None:
                    embedding = await query_vector
                    nearest = dict(await self.vector_ranking(conn, embedding, candidates, spaces))
                    rankings[f"{name}vector"] = list(nearest)
                    if not name:
                        similarity = nearest  # the question's own, as reported
                        if label_similarity is not None:
                            labelled = await self.label_ranking(conn, embedding, label_similarity, candidates, spaces)
                if text is not None:  # after the vector ranking: chunks the fusion ties keep the vector ranking's order
                    rankings[f"{name}text"] = [i for i, _ in text]
            if labelled:
                rankings["feedback"] = labelled
            fused = reciprocal_rank_fusion(rankings, k=rrf_k, weights={"feedback": label_weight})
            if per_page is not None:
                ids = [i for i, _, _ in fused]
                cur = await conn.execute("SELECT id, page_id FROM chunks WHERE id = ANY(%s)", (ids,))
                page_of = dict(await cur.fetchall())  # without chunks an ingest deleted meanwhile
                kept = set(spread_over_pages([i for i in ids if i in page_of], page_of, k, per_page))
                fused = [f for f in fused if f[0] in kept]
            fused = fused[:k]
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(f"SELECT {_HIT_COLUMNS} FROM chunks c WHERE c.id = ANY(%s)", ([i for i, _, _ in fused],))
            rows = {row["chunk_id"]: row for row in await cur.fetchall()}
        return [
            SearchHit(**rows[i], score=score, ranks=ranks, similarity=similarity.get(i))
            for i, score, ranks in fused
            if i in rows
        ]


def _space_filter(spaces: Sequence[str] | None) -> tuple[str, dict[str, list[str]]]:
    if spaces is None:
        return "", {}
    return "AND space = ANY(%(spaces)s)", {"spaces": list(spaces)}
