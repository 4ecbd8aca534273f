"""The source of loaded modules, parsed once per state of their file, and a module
lent to ``sys.modules`` for code that runs without one (``runpy``, ``exec``)."""

from __future__ import annotations

import ast
import contextlib
import inspect
import linecache
import os
import sys
import types
from collections.abc import Iterator
from typing import Any

from kazeflow.fingerprint._syntax import ModuleIndex, parse_module

#: Per module: its source file (absolute), or None when it has none.
MODULE_FILES: dict[str, str | None] = {}
#: Per module: the linecache lines it was parsed from, its tree and statement index.
MODULES: dict[str, tuple[list[str], ast.Module, ModuleIndex]] = {}


def module_file(module_name: str) -> str | None:
    if module_name not in MODULE_FILES:
        module = sys.modules.get(module_name)
        try:
            filename = inspect.getsourcefile(module) or inspect.getfile(module)  # type: ignore[arg-type]
        except TypeError:  # built in, or made at run time
            filename = None
        MODULE_FILES[module_name] = os.path.abspath(filename) if filename else None
    return MODULE_FILES[module_name]


def parsed_module(module_name: str) -> tuple[ast.Module, ModuleIndex] | None:
    """The tree and statement index of a loaded module's source (parsed once while its
    file is unchanged); None when its source is not available."""
    filename = module_file(module_name)
    if filename is None:
        return None
    linecache.checkcache(filename)
    lines = linecache.getlines(filename, vars(sys.modules[module_name]))
    cached = MODULES.get(module_name)
    if cached is None or cached[0] is not lines:
        if not lines:
            return None
        try:
            tree = parse_module("".join(lines))
        except SyntaxError:
            return None
        cached = MODULES[module_name] = (lines, tree, ModuleIndex(tree))
    return cached[1], cached[2]


def needs_lent_module(fn: Any) -> bool:
    """Whether ``sys.modules`` has no module of ``fn``'s globals under its module's
    name, though they come from a file: code run by ``runpy.run_path`` (``"<run_path>"``,
    or a ``"__main__"`` that is not the running one) or by ``exec``."""
    name = getattr(fn, "__module__", None)
    namespace = getattr(fn, "__globals__", None)
    if not name or not namespace or not namespace.get("__file__"):
        return False
    present = sys.modules.get(name)
    return present is None or vars(present) is not namespace


@contextlib.contextmanager
def lent_module(fn: Any) -> Iterator[None]:
    """While ``fn`` is hashed, a module of its globals under its module's name (see
    :func:`needs_lent_module`): its module-level statements are then found as any
    module's (without, the globals it reads would go unhashed: edits unseen)."""
    name, namespace = fn.__module__, fn.__globals__
    present = sys.modules.get(name)
    module = types.ModuleType(name)
    vars(module).update(namespace)
    sys.modules[name] = module
    MODULE_FILES.pop(name, None)  # the name's file may differ from what was seen
    try:
        yield
    finally:
        if sys.modules.get(name) is module:
            if present is None:
                del sys.modules[name]
            else:
                sys.modules[name] = present
        MODULE_FILES.pop(name, None)
        MODULES.pop(name, None)




def clear() -> None:
    """Forget the modules' files and trees."""
    MODULE_FILES.clear()
    MODULES.clear()
