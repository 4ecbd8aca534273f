"""What the code hash cannot see, said once per process: a global that no statement
builds, code picked by a name known only at run time, a module-level value a call
computes (which may have read a file)."""

from __future__ import annotations

import ast
import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("kazeflow")


#: Globals already warned about in this process (once each is enough).
_UNTRACED: set[tuple[str, str]] = set()


def warn_untraced(module_name: str, name: str, value: Any) -> None:
    """Say (once) that a global's contents cannot be followed by the code hash."""
    if (module_name, name) in _UNTRACED:
        return
    _UNTRACED.add((module_name, name))
    log.warning(
        "%s.%s (a %s) is read by an asset, but no statement in its source builds it "
        "(set through globals(), by another module, or at run time?): changing it will "
        "not re-run what reads it; build it with a plain assignment in its module, or "
        "give the asset code_version=...", module_name, name, type(value).__qualname__)


#: (asset, constructs) already warned about in this process.
_DYNAMIC: set[tuple[str, tuple[tuple[str, int, str], ...]]] = set()


def warn_dynamic(asset_name: str, sites: Sequence[tuple[str, int, str]]) -> None:
    """Say (once per asset) which constructs its code picks a module or attribute with
    at run time, which the code hash cannot follow."""
    where = (asset_name, tuple(sorted(set(sites))))
    if where in _DYNAMIC:
        return
    _DYNAMIC.add(where)
    listed = "; ".join(f"{text} at {file}:{line}" for file, line, text in where[1])
    log.warning(
        "asset %r imports or reads code by a name known only at run time, which its code "
        "hash cannot follow: %s. Editing what that picks will not re-run %r; use a literal "
        "name (importlib.import_module(\"pkg.mod\"), getattr(module, \"name\")) or import "
        "the module at module level, or give the asset code_version=... (and change it "
        "when that code changes)", asset_name, listed, asset_name)


#: (asset, values) already warned about in this process.
_COMPUTED: set[tuple[str, tuple[tuple[str, str, str], ...]]] = set()


def warn_computed(asset_name: str, values: Sequence[tuple[str, str, str]]) -> None:
    """Say (once per asset) which module-level values its code reads that a call
    computes when the module is imported: if one reads a file, editing the file changes
    the value but not the code, and nothing would re-run."""
    where = (asset_name, tuple(sorted(set(values))))
    if where in _COMPUTED:
        return
    _COMPUTED.add(where)
    listed = "; ".join(f"{module}.{name} (`{text}`)" for module, name, text in where[1])
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
    _UNTRACED.clear()
    _DYNAMIC.clear()
    _COMPUTED.clear()
    _CALLED.clear()
