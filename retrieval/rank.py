"""Rank fusion for hybrid search: pure functions over ranked id lists."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[Hashable]], k: int = 60
) -> list[tuple[Hashable, float, dict[str, int]]]:
    """Fuse named rankings (best first) into one: score = sum of 1 / (k + rank), rank counted from 1.

    Returns (id, score, {ranking name: rank}) best first; ties keep the order of first appearance.
    """
    scores: dict[Hashable, float] = {}
    ranks: dict[Hashable, dict[str, int]] = {}
    for name, ranking in rankings.items():
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
            ranks.setdefault(item, {})[name] = rank
    order = sorted(scores, key=lambda item: -scores[item])
    return [(item, scores[item], ranks[item]) for item in order]
