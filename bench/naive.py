"""The naive retrieval stack anyone builds in an afternoon, as the baseline that wikibot's search must beat.

BM25 (Okapi: k1 1.5, b 0.75, lower-cased word tokens) and exact cosine similarity over the same chunks
(heading chunks, each with its page title and section path), and their reciprocal rank fusion. Pure
functions over chunk texts and vectors: bench/retrieval.py reads both from the index. BM25 is written out
here (a dozen lines) rather than taken from a package, so that the baseline adds no dependency.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np

from retrieval.rank import reciprocal_rank_fusion

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class Bm25:
    """Okapi BM25 over a fixed list of documents; `rank` gives their indexes, best first (matches only)."""

    def __init__(self, documents: Sequence[str], k1: float = 1.5, b: float = 0.75) -> None:
        self.counts = [Counter(words(d)) for d in documents]
        self.lengths = [sum(c.values()) for c in self.counts]
        self.mean_length = sum(self.lengths) / max(len(documents), 1)
        frequency = Counter(w for c in self.counts for w in c)
        n = len(documents)
        self.idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in frequency.items()}
        self.k1, self.b = k1, b

    def rank(self, query: str) -> list[int]:
        terms = set(words(query)) & self.idf.keys()
        scores: dict[int, float] = {}
        for i, (counts, length) in enumerate(zip(self.counts, self.lengths, strict=True)):
            norm = self.k1 * (1 - self.b + self.b * length / self.mean_length)
            score = sum(self.idf[t] * counts[t] * (self.k1 + 1) / (counts[t] + norm) for t in terms if t in counts)
            if score > 0:
                scores[i] = score
        return sorted(scores, key=lambda i: (-scores[i], i))


def cosine_rank(vectors: np.ndarray, query: np.ndarray) -> list[int]:
    """Indexes of the (normalised) vectors by cosine similarity to the query, nearest first."""
    return [int(i) for i in np.argsort(-(vectors @ query), kind="stable")]


def fused_rank(*rankings: Sequence[Hashable], k: int = 60) -> list[Hashable]:
    return [item for item, _, _ in reciprocal_rank_fusion({str(n): r for n, r in enumerate(rankings)}, k=k)]
