"""Planning: the selected assets plus everything upstream, in topological order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kazeflow.assets import Asset
from kazeflow.errors import CycleError, UnknownAssetError


def unknown_asset(name: str, known: Iterable[str], context: str = "") -> UnknownAssetError:
    """An error for ``name``, suggesting the closest known names."""
    import difflib  # only for a message

    suggestions = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(map(repr, suggestions))}?" if suggestions else \
        "; check the spelling, or import the module that defines it"
    return UnknownAssetError(f"{context}unknown asset {name!r}{hint}", asset_name=name,
                             suggestions=suggestions)


def plan(universe: Mapping[str, Asset], selection: Iterable[str] | None) -> list[Asset]:
    """Order the selection and its upstream closure so every asset follows its deps.

    The order is the depth-first post-order of the walk that collects the closure
    (upstreams in the order each asset lists them, then the asset): a topological order,
    found with the closure in one pass. ``graphlib.TopologicalSorter`` gives one too, but
    costs ≈ 3 µs an asset in pure Python, a tenth of a run where nothing changed.

    Raises:
        UnknownAssetError: a selected name or a dependency that no asset has.
        CycleError: the dependencies loop; the error carries the cycle path.
    """
    names = sorted(universe) if selection is None else list(dict.fromkeys(selection))
    for name in names:
        if name not in universe:
            raise unknown_asset(name, universe)
    order: list[Asset] = []
    placed: dict[str, bool] = {}  # False while on the current path, True once ordered
    for root in names:
        if root in placed:
            continue
        placed[root] = False
        path = [(root, iter(universe[root].deps))]
        while path:
            name, deps = path[-1]
            for dep in deps:
                state = placed.get(dep)
                if state is None:
                    if dep not in universe:
                        raise unknown_asset(dep, universe, f"asset {name!r} depends on an ")
                    placed[dep] = False
                    path.append((dep, iter(universe[dep].deps)))
                    break
                if state is False:  # on the path: a cycle from it back to it
                    names_on_path = [n for n, _ in path]
                    raise _cycle([*names_on_path[names_on_path.index(dep):], dep])
            else:
                path.pop()
                placed[name] = True
                order.append(universe[name])
    return order


def _cycle(cycle: list[str]) -> CycleError:
    """The error for ``cycle``, a path where each asset depends on the next."""
    path = " -> ".join(cycle)
    return CycleError(f"assets depend on each other in a cycle: {path}; remove one of these "
                      "dependencies", cycle=cycle)
