"""Planning: the selected assets plus everything upstream, in topological order."""

from __future__ import annotations

import difflib
import graphlib
from collections.abc import Iterable, Mapping

from kazeflow.assets import Asset
from kazeflow.errors import CycleError, UnknownAssetError


def unknown_asset(name: str, known: Iterable[str], context: str = "") -> UnknownAssetError:
    """An error for ``name``, suggesting the closest known names."""
    suggestions = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(map(repr, suggestions))}?" if suggestions else \
        "; check the spelling, or import the module that defines it"
    return UnknownAssetError(f"{context}unknown asset {name!r}{hint}", asset_name=name,
                             suggestions=suggestions)


def plan(universe: Mapping[str, Asset], selection: Iterable[str] | None) -> list[Asset]:
    """Order the selection and its upstream closure so every asset follows its deps.

    Raises:
        UnknownAssetError: a selected name or a dependency that no asset has.
        CycleError: the dependencies loop; the error carries the cycle path.
    """
    names = sorted(universe) if selection is None else list(dict.fromkeys(selection))
    graph: dict[str, tuple[str, ...]] = {}
    pending = list(reversed(names))
    for name in names:
        if name not in universe:
            raise unknown_asset(name, universe)
    while pending:
        name = pending.pop()
        if name in graph:
            continue
        node = universe[name]
        for dep in node.deps:
            if dep not in universe:
                raise unknown_asset(dep, universe, f"asset {name!r} depends on an ")
        graph[name] = node.deps
        pending.extend(reversed(node.deps))
    sorter = graphlib.TopologicalSorter(graph)
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = list(reversed(exc.args[1]))  # graphlib lists it against the edges
        path = " -> ".join(cycle)
        raise CycleError(f"assets depend on each other in a cycle: {path}; remove one of "
                         "these dependencies", cycle=cycle) from None
    return [universe[name] for name in order]
