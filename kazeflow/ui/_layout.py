"""A small layered layout of the asset graph, left to right.

Columns by longest path from a source (an asset sits one column right of its furthest
upstream), rows ordered by barycenters (the mean row of a node's neighbours), swept
left to right and back a few times to untangle edges. Pure: names and dependencies in,
pixel positions out; the page and the notebook view draw the same picture.
"""

from __future__ import annotations

import graphlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Size of a node box and the gaps between them, in pixels.
NODE_WIDTH, NODE_HEIGHT = 180, 54
COLUMN_GAP, ROW_GAP, MARGIN = 70, 22, 16


@dataclass(frozen=True)
class Layout:
    """Top-left corner of each node's box, and the size of the whole drawing."""

    positions: Mapping[str, tuple[int, int]]
    width: int
    height: int


def layers(deps: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """The column of each node: 0 for a source, else one more than its furthest upstream.

    Example::

        layers({"a": [], "b": ["a"], "c": ["a", "b"]})  # {"a": 0, "b": 1, "c": 2}
    """
    column: dict[str, int] = {}
    for name in graphlib.TopologicalSorter(deps).static_order():
        ups = [column[d] for d in deps.get(name, ()) if d in column]
        column[name] = 1 + max(ups) if ups else 0
    return column


def ordered(deps: Mapping[str, Sequence[str]], sweeps: int = 4) -> list[list[str]]:
    """Nodes by column, each column ordered to keep edges short and uncrossed."""
    column = layers(deps)
    columns: list[list[str]] = [[] for _ in range(max(column.values(), default=-1) + 1)]
    for name in deps:  # the given order breaks ties: the plan's order is stable
        columns[column[name]].append(name)
    downs: dict[str, list[str]] = {name: [] for name in deps}
    for name, ups in deps.items():
        for up in ups:
            if up in downs:
                downs[up].append(name)
    for _ in range(sweeps):
        for i in range(1, len(columns)):
            _sort(columns[i], deps, columns)
        for i in range(len(columns) - 2, -1, -1):
            _sort(columns[i], downs, columns)
    return columns


def _sort(column: list[str], neighbours: Mapping[str, Sequence[str]],
          columns: Sequence[Sequence[str]]) -> None:
    """Order ``column`` by the mean row of each node's ``neighbours`` (in place); a node
    without any keeps its own row."""
    row = {name: i for col in columns for i, name in enumerate(col)}

    def barycenter(name: str) -> float:
        rows = [row[n] for n in neighbours.get(name, ()) if n in row]
        return sum(rows) / len(rows) if rows else float(row[name])

    column.sort(key=barycenter)


def layout(deps: Mapping[str, Sequence[str]]) -> Layout:
    """Pixel positions of every node of ``deps`` (name → upstream names), columns
    centred vertically on the tallest."""
    columns = ordered(deps)
    tallest = max((len(c) for c in columns), default=0)
    height = 2 * MARGIN + tallest * NODE_HEIGHT + max(tallest - 1, 0) * ROW_GAP
    positions = {}
    for i, col in enumerate(columns):
        own = len(col) * NODE_HEIGHT + (len(col) - 1) * ROW_GAP
        top = (height - own) // 2
        for j, name in enumerate(col):
            positions[name] = (MARGIN + i * (NODE_WIDTH + COLUMN_GAP),
                               top + j * (NODE_HEIGHT + ROW_GAP))
    width = 2 * MARGIN + len(columns) * NODE_WIDTH + max(len(columns) - 1, 0) * COLUMN_GAP
    return Layout(positions, width, height)
