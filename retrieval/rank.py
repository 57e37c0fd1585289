"""Rank fusion for hybrid search: pure functions over ranked id lists."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

T = TypeVar("T", bound=Hashable)


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[Hashable]], k: int = 60, weights: Mapping[str, float] | None = None
) -> list[tuple[Hashable, float, dict[str, int]]]:
    """Fuse named rankings (best first) into one: score = sum of weight / (k + rank), rank counted from 1, a
    ranking's weight 1 unless `weights` names it.

    Returns (id, score, {ranking name: rank}) best first; ties keep the order of first appearance.
    """
    scores: dict[Hashable, float] = {}
    ranks: dict[Hashable, dict[str, int]] = {}
    for name, ranking in rankings.items():
        weight = (weights or {}).get(name, 1.0)
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
            ranks.setdefault(item, {})[name] = rank
    order = sorted(scores, key=lambda item: -scores[item])
    return [(item, scores[item], ranks[item]) for item in order]


def spread_over_pages(ranked: Sequence[T], page_of: Mapping[T, Hashable], k: int, per_page: int) -> list[T]:
    """The best `k` of `ranked` (best first) with at most `per_page` from any one page, so that a prompt holds
    look-alike pages rather than more of one page; places left when fewer pages are found go to the best of
    the others. Keeps the ranking's order."""
    taken: dict[Hashable, int] = {}
    first, rest = [], []
    for item in ranked:
        page = page_of[item]
        (first if taken.get(page, 0) < per_page else rest).append(item)
        taken[page] = taken.get(page, 0) + 1
    chosen = set(first[:k] + rest[: max(0, k - len(first))])
    return [item for item in ranked if item in chosen]
