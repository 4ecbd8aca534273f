"""Code fingerprints: the normalised source of an asset and of the user code it reaches.

The fingerprint of a function is a set of named *components*: its own source with
docstrings, decorators, comments and formatting removed (``ast.unparse`` of the tree), and
for every user-level name it reads, recursively:

- user functions and classes: their normalised source;
- immutable constants (numbers, strings, bytes, None, tuples/frozensets of them): value;
- anything else (lists, dicts, objects): the source of the statements that assign it,
  never its current state, so mutating a module-level list does not change a hash.

Library code (the standard library, site-packages, kazeflow itself) is not followed.
Components of the asset's own module are named by qualname, others ``module:qualname``,
so running a file as ``__main__`` or importing it gives the same hash.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import logging
import os
import sys
import sysconfig
import textwrap
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kazeflow._hashing import tagged_digest

log = logging.getLogger("kazeflow")

#: Bump when normalisation changes; every code hash changes with it.
CODE_HASH_VERSION = 1

_IMMUTABLE_SCALARS = (int, float, complex, str, bytes, bool, type(None))


@dataclass(frozen=True)
class CodeFingerprint:
    """The code hash of an asset and the normalised texts it was computed from."""

    code_hash: str
    components: Mapping[str, str]


def code_version_fingerprint(code_version: str) -> CodeFingerprint:
    """Fingerprint of an asset whose user pinned ``code_version``."""
    components = {"code_version": code_version}
    return CodeFingerprint(tagged_digest("kazeflow.code_version", code_version), components)


def fingerprint(fn: Callable[..., Any]) -> CodeFingerprint:
    """Fingerprint ``fn`` and the user code it reaches (see the module docstring)."""
    collector = _Collector(fn.__module__)
    collector.add_function(fn)
    components = dict(sorted(collector.components.items()))
    digest = tagged_digest("kazeflow.code", CODE_HASH_VERSION, collector.key_of(fn),
                           sorted(components.items()))
    return CodeFingerprint(digest, components)


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.update(os.path.join(p, "lib") for p in (sys.base_prefix, sys.base_exec_prefix))
    roots.update(p for p in sys.path if p.rstrip(os.sep).endswith(("site-packages",
                                                                    "dist-packages")))
    return tuple(sorted({os.path.realpath(r) + os.sep for r in roots}))


_LIBRARY_ROOTS = _library_roots()


def is_user_module(module_name: str | None) -> bool:
    """Whether code of ``module_name`` belongs to the user (and so is hashed)."""
    if not module_name or module_name in sys.builtin_module_names:
        return False
    if module_name == "kazeflow" or module_name.startswith("kazeflow."):
        return False
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if file is None:  # __main__ of a notebook, a module built at run time
        return module is not None or module_name == "__main__"
    return not os.path.realpath(file).startswith(_LIBRARY_ROOTS)


class _StripDocstrings(ast.NodeTransformer):
    def _strip(self, node: Any) -> Any:
        self.generic_visit(node)
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Module = _strip


def _normalise(tree: ast.AST) -> str:
    return ast.unparse(_StripDocstrings().visit(tree))


def _global_names(tree: ast.AST) -> list[str]:
    return sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                   and isinstance(n.ctx, ast.Load)})


def _attribute_chains(tree: ast.AST) -> list[list[str]]:
    chains = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            parts: list[str] = []
            cur: ast.expr = node
            while isinstance(cur, ast.Attribute):
                parts.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name):
                chains.append([cur.id, *reversed(parts)])
    return chains


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _bytecode_text(code: types.CodeType) -> str:
    """Last resort for code without source (``exec``, ``python -c``): its bytecode."""
    consts = [(_bytecode_text(c) if isinstance(c, types.CodeType) else repr(c))
              for c in code.co_consts]
    return f"<bytecode {code.co_code.hex()} {consts} {list(code.co_names)}>"


def _immutable_repr(value: Any) -> str | None:
    """Canonical text of an immutable constant, or None if ``value`` is not one."""
    if type(value) in _IMMUTABLE_SCALARS:
        return repr(value)
    if type(value) is tuple:
        items = [_immutable_repr(v) for v in value]
        return None if None in items else "(" + ", ".join(items) + ",)"  # type: ignore[arg-type]
    if type(value) is frozenset:
        items = [_immutable_repr(v) for v in value]
        return None if None in items else "frozenset({" + ", ".join(sorted(items)) + "})"  # type: ignore[arg-type]
    return None


class _Collector:
    """Walks from one function through the user code it reaches, naming components."""

    def __init__(self, root_module: str) -> None:
        self.root_module = root_module
        self.components: dict[str, str] = {}
        self._module_trees: dict[str, ast.Module | None] = {}

    def key(self, module_name: str, qualname: str) -> str:
        """Component name: bare qualname in the asset's own module, else module:qualname."""
        return qualname if module_name == self.root_module else f"{module_name}:{qualname}"

    def key_of(self, obj: Any) -> str:
        return self.key(obj.__module__, obj.__qualname__)

    def add_function(self, fn: Callable[..., Any]) -> None:
        key = self.key_of(fn)
        if key in self.components:
            return
        self.components[key] = ""  # claims the key first: recursion stops here
        code: types.CodeType = fn.__code__  # type: ignore[attr-defined]
        fn_globals: dict[str, Any] = fn.__globals__  # type: ignore[attr-defined]
        tree = self._parse_source(fn)
        if tree is None:
            self.components[key] = _bytecode_text(code)
            names = sorted(_code_names(code))
            chains: list[list[str]] = []
        else:
            self.components[key] = _normalise(tree)
            candidates = _code_names(code)
            names = [n for n in _global_names(tree) if n in candidates]
            chains = _attribute_chains(tree)
        module_name = fn.__module__
        self._visit_names(names, chains, fn_globals, module_name)
        for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):  # type: ignore[attr-defined]
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            self._visit_value(f"{key}.<closure>.{name}", value, module_name, name)

    def add_class(self, cls: type) -> None:
        key = self.key_of(cls)
        if key in self.components:
            return
        self.components[key] = ""
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError, SyntaxError):
            self.components[key] = f"<class {cls.__qualname__} without source>"
            return
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                node.decorator_list = []
        self.components[key] = _normalise(tree)
        module = sys.modules.get(cls.__module__)
        self._visit_names(_global_names(tree), _attribute_chains(tree),
                          vars(module) if module else {}, cls.__module__)

    def _parse_source(self, fn: Callable[..., Any]) -> ast.AST | None:
        try:
            source = textwrap.dedent(inspect.getsource(fn))
            tree = ast.parse(source)
        except (OSError, TypeError, SyntaxError, IndentationError):
            log.debug("no source for %s; hashing its bytecode", fn)
            return None
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                node.decorator_list = []
        return tree

    def _visit_names(self, names: list[str], chains: list[list[str]],
                     namespace: Mapping[str, Any], module_name: str) -> None:
        for name in names:
            if name in namespace:
                self._visit_value(self.key(module_name, name), namespace[name],
                                  module_name, name)
        for chain in chains:
            obj = namespace.get(chain[0])
            for attr in chain[1:]:
                if not isinstance(obj, types.ModuleType) or not is_user_module(obj.__name__):
                    break
                if not hasattr(obj, attr):
                    break
                value = getattr(obj, attr)
                if isinstance(value, types.ModuleType):
                    obj = value
                    continue
                self._visit_value(self.key(obj.__name__, attr), value, obj.__name__, attr)
                break

    def _visit_value(self, key: str, value: Any, module_name: str, name: str) -> None:
        from kazeflow.assets import Asset  # a cycle at import time otherwise

        if isinstance(value, Asset):
            value = value.fn
        if isinstance(value, types.ModuleType) or key in self.components:
            return
        text = _immutable_repr(value)
        if text is not None:
            self.components[key] = "= " + text
        elif isinstance(value, types.FunctionType):
            if is_user_module(value.__module__):
                self.add_function(value)
        elif isinstance(value, type):
            if is_user_module(value.__module__):
                self.add_class(value)
        elif isinstance(value, (types.BuiltinFunctionType, types.MethodType,
                                types.MethodWrapperType)) or value is getattr(builtins, name,
                                                                               None):
            return
        elif is_user_module(module_name):
            self._add_assignment(key, module_name, name)

    def _add_assignment(self, key: str, module_name: str, name: str) -> None:
        """Name a non-constant global by the statements that assign it."""
        self.components[key] = ""
        tree = self._module_tree(module_name)
        statements: list[ast.stmt] = []
        if tree is not None:
            for stmt in _module_level(tree.body):
                if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                    if any(isinstance(n, ast.Name) and n.id == name
                           for t in targets for n in ast.walk(t)):
                        statements.append(stmt)
                elif isinstance(stmt, ast.ImportFrom) and stmt.module and stmt.level == 0:
                    for alias in stmt.names:
                        if (alias.asname or alias.name) == name and is_user_module(stmt.module):
                            statements.append(stmt)
                            self._add_assignment(self.key(stmt.module, alias.name),
                                                 stmt.module, alias.name)
        if not statements:
            value = vars(sys.modules[module_name]).get(name) if module_name in sys.modules \
                else None
            self.components[key] = f"<{type(value).__qualname__} object>"
            return
        self.components[key] = "\n".join(ast.unparse(s) for s in statements)
        module = sys.modules.get(module_name)
        for stmt in statements:
            value_node = getattr(stmt, "value", None)
            if value_node is not None:
                self._visit_names([n for n in _global_names(value_node) if n != name],
                                  _attribute_chains(value_node),
                                  vars(module) if module else {}, module_name)

    def _module_tree(self, module_name: str) -> ast.Module | None:
        if module_name not in self._module_trees:
            module = sys.modules.get(module_name)
            try:
                self._module_trees[module_name] = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
            except (OSError, TypeError, SyntaxError):
                self._module_trees[module_name] = None
        return self._module_trees[module_name]



def _module_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements run at import time: the body, and inside if/try/with/for blocks."""
    out: list[ast.stmt] = []
    for stmt in body:
        out.append(stmt)
        if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for field in ("body", "orelse", "finalbody"):
                out.extend(_module_level(getattr(stmt, field, None) or []))
            for handler in getattr(stmt, "handlers", None) or []:
                out.extend(_module_level(handler.body))
    return out
