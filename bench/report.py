"""Printing benchmark results as Markdown tables (pasted into the README)."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[object]], cell: Callable[[object], str] | None = None
) -> None:
    cell = cell or (lambda v: f"{v:,.3f}" if isinstance(v, float) else str(v))
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |")
