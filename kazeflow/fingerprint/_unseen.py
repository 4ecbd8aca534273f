"""What the code hash cannot see, said once per process: a global that no statement
builds, code picked by a name known only at run time, a module-level value a call
computes (which may have read a file)."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

from kazeflow.context import log

#: What was said in this process (each once is enough).
_SAID: set[tuple[Any, ...]] = set()


def _first_time(*what: Any) -> bool:
    """Whether ``what`` was not said yet in this process (it counts as said now)."""
    if what in _SAID:
        return False
    _SAID.add(what)
    return True


def warn_untraced(module_name: str, name: str, value: Any) -> None:
    """Say (once) that a global's contents cannot be followed by the code hash."""
    if not _first_time("untraced", module_name, name):
        return
    log.warning(
        "%s.%s (a %s) is read by an asset, but no statement in its source builds it "
        "(set through globals(), by another module, or at run time?): changing it will "
        "not re-run what reads it; build it with a plain assignment in its module, or "
        "give the asset code_version=...", module_name, name, type(value).__qualname__)


def warn_dynamic(asset_name: str, sites: Sequence[tuple[str, int, str]]) -> None:
    """Say (once per asset) which constructs its code picks a module or attribute with
    at run time, which the code hash cannot follow."""
    sites = tuple(sorted(set(sites)))
    if not _first_time("dynamic", asset_name, sites):
        return
    listed = "; ".join(f"{text} at {file}:{line}" for file, line, text in sites)
    log.warning(
        "asset %r imports or reads code by a name known only at run time, which its code "
        "hash cannot follow: %s. Editing what that picks will not re-run %r; use a literal "
        "name (importlib.import_module(\"pkg.mod\"), getattr(module, \"name\")) or import "
        "the module at module level, or give the asset code_version=... (and change it "
        "when that code changes)", asset_name, listed, asset_name)


def warn_computed(asset_name: str, values: Sequence[tuple[str, str, str]]) -> None:
    """Say (once per asset) which module-level values its code reads that a call
    computes when the module is imported: if one reads a file, editing the file changes
    the value but not the code, and nothing would re-run."""
    values = tuple(sorted(set(values)))
    if not _first_time("computed", asset_name, values):
        return
    listed = "; ".join(f"{module}.{name} (`{text}`)" for module, name, text in values)
    log.warning(
        "asset %r reads module-level values computed by a call: %s. If that call reads "
        "a file, editing the file will not re-run %r: declare the files it reads, "
        "@asset(reads=[\"params.json\", ...]), so that they enter its cache key; if it "
        "reads none, say so with @asset(reads=[]) (either silences this warning)",
        asset_name, listed, asset_name)


def computed_by_call(text: str) -> bool:
    """Whether the module-level statement ``text`` assigns the value of a call."""
    known = _CALLED.get(text)
    if known is None:
        try:
            tree = ast.parse(text)
        except SyntaxError:
            tree = ast.Module(body=[], type_ignores=[])
        known = _CALLED[text] = any(
            isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign))
            and node.value is not None
            and any(isinstance(n, ast.Call) for n in ast.walk(node.value))
            for node in tree.body)
    return known


_CALLED: dict[str, bool] = {}


def data_like(value: Any) -> bool:
    """Whether ``value`` holds data (that a file may have given), not code or tools."""
    return isinstance(value, (dict, list, set, frozenset, tuple, bytearray)) or \
        hasattr(type(value), "__array__")


def clear() -> None:
    """Forget what was said in this process (as a new process would)."""
    _SAID.clear()
    _CALLED.clear()
