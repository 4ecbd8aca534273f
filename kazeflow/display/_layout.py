"""A layered left-to-right layout of a graph of assets: each asset's column is the
length of the longest path to it from an asset without upstreams; within a column,
assets are ordered by the mean row of their upstreams (one barycentre pass), so
edges cross less. Pure arithmetic: no drawing here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def layout(deps: Mapping[str, Sequence[str]]) -> dict[str, tuple[int, int]]:
    """Asset name → (column, row) for ``deps`` (name → upstream names, in a
    topological order; upstreams outside ``deps`` are ignored)."""
    column: dict[str, int] = {}
    for name, ups in deps.items():
        column[name] = 1 + max((column[u] for u in ups if u in column), default=-1)
    columns: dict[int, list[str]] = {}
    for name, col in column.items():
        columns.setdefault(col, []).append(name)
    row: dict[str, int] = {}
    for col in sorted(columns):
        def barycentre(name: str) -> float:
            rows = [row[u] for u in deps[name] if u in row]
            return sum(rows) / len(rows) if rows else float("inf")

        ordered = sorted(columns[col], key=barycentre)  # stable: plan order breaks ties
        row.update((name, i) for i, name in enumerate(ordered))
    return {name: (column[name], row[name]) for name in deps}
