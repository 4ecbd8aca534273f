"""Pure helpers on Python syntax trees for code fingerprints: parsing definitions,
normalising them (``ast.unparse`` without docstrings), and finding the names they read
and the statements that build a name. Nothing here looks at live objects."""

from __future__ import annotations

import ast
import copy
import threading
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from kazeflow.fingerprint._imports import (
    DynamicImport,
    ModuleImport,
    chain_of,
    import_call,
    scan_call,
)

IMMUTABLE_SCALARS = (int, float, complex, str, bytes, bool, type(None))
DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


_DOC_OWNERS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)


def _strip_docstrings(nodes: Iterable[ast.AST]) -> None:
    """Remove the docstring of every function, class and module among ``nodes``."""
    for node in nodes:
        if isinstance(node, _DOC_OWNERS):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and \
                    isinstance(body[0].value, ast.Constant) and \
                    isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]


def normalise(node: ast.AST, *, in_place: bool = False,
              nodes: Iterable[ast.AST] | None = None) -> str:
    """``ast.unparse`` of ``node`` without docstrings.

    ``node`` is left untouched unless ``in_place`` (for a tree nobody else holds);
    ``nodes``, every node of such a tree (see :func:`walk`), saves walking it again.
    """
    if not in_place:
        node, nodes = copy.deepcopy(node), None
    _strip_docstrings(walk(node) if nodes is None else nodes)
    return ast.unparse(node)


def parse_source(source: str) -> ast.Module | None:
    """Parse a definition's source, also one indented in a block or function."""
    import textwrap  # only to parse: a run whose analyses are cached spares it

    try:
        return parse_module(textwrap.dedent(source))
    except SyntaxError:  # e.g. a multi-line string less indented than the def
        pass
    try:
        block = parse_module("if 1:\n" + source).body[0]
    except SyntaxError:
        return None
    return ast.Module(body=block.body, type_ignores=[])  # type: ignore[attr-defined]


_PARSING = threading.Lock()


def parse_module(source: str) -> ast.Module:
    """``ast.parse``, one thread at a time: CPython before 3.13 keeps the AST builder's
    recursion depth in shared state, and concurrent parses fail with "AST constructor
    recursion depth mismatch" (cpython#106905)."""
    with _PARSING:
        return ast.parse(source)


def walk(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree``, in the order of :func:`ast.walk` (breadth first), about
    twice as fast: walk it once, then :func:`scan` and :func:`normalise`."""
    nodes = [tree]
    node_type, extend, append = ast.AST, nodes.extend, nodes.append
    for node in nodes:  # grows while it is read
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                extend(item for item in value if isinstance(item, node_type))
            elif isinstance(value, node_type):
                append(value)
    return nodes


def _blocks(stmt: ast.stmt) -> Iterator[list[ast.stmt]]:
    """The statement lists right inside ``stmt``: its body, ``else`` and ``finally``
    blocks, and the bodies of its ``except`` handlers and ``case`` clauses."""
    for name in ("body", "orelse", "finalbody"):
        block = getattr(stmt, name, None)
        if isinstance(block, list):
            yield block
    for clause in [*(getattr(stmt, "handlers", None) or ()),
                   *(getattr(stmt, "cases", None) or ())]:
        yield clause.body


def _definitions(tree: ast.Module, nested: bool = True
                 ) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every function definition in ``tree``, found by walking the statements only (an
    expression holds no ``def``); without ``nested``, not those in a function or class."""
    found = []
    pending = list(tree.body)
    while pending:
        stmt = pending.pop()
        if isinstance(stmt, DEFS):
            found.append(stmt)
        if nested or not isinstance(stmt, (*DEFS, ast.ClassDef)):
            for block in _blocks(stmt):
                pending.extend(block)
    return found


class Scan(NamedTuple):
    """What :func:`scan` finds in a tree."""

    names: set[str]
    chains: list[list[str]]
    imports: list[ast.ImportFrom]
    modules: list[ModuleImport]
    dynamic: list[DynamicImport]


def scan(nodes: Iterable[ast.AST]) -> Scan:
    """The names read, the ``name.attr…`` chains (also through ``getattr(x, "attr")``
    and ``importlib.import_module("mod").attr``), the ``from … import`` statements, the
    other imports (statements and calls with literal names) and the dynamic ones among
    ``nodes``."""
    found = Scan(set(), [], [], [], [])
    names, chains = found.names, found.chains
    for node in nodes:
        kind = type(node)
        if kind is ast.Name:
            if type(node.ctx) is ast.Load:  # type: ignore[attr-defined]
                names.add(node.id)  # type: ignore[attr-defined]
        elif kind is ast.Attribute:
            parts: list[str] = []
            cur: ast.AST = node
            while type(cur) is ast.Attribute:
                parts.append(cur.attr)  # type: ignore[attr-defined]
                cur = cur.value  # type: ignore[attr-defined]
            if type(cur) is ast.Name:
                chains.append([cur.id, *reversed(parts)])  # type: ignore[attr-defined]
            elif type(cur) is ast.Call and (root := chain_of(cur)) is not None:
                chains.append([*root, *reversed(parts)])
        elif kind is ast.Call:
            scan_call(node, found.chains, found.modules, found.dynamic)  # type: ignore[arg-type]
        elif kind is ast.ImportFrom:
            found.imports.append(node)  # type: ignore[arg-type]
        elif kind is ast.Import:
            for alias in node.names:  # type: ignore[attr-defined]
                if alias.asname:
                    found.modules.append(ModuleImport(alias.asname, alias.name, 0, False))
                else:
                    found.modules.append(ModuleImport(alias.name.partition(".")[0],
                                                      alias.name, 0, True))
        elif kind is ast.Assign and type(node.value) is ast.Call:  # type: ignore[attr-defined]
            record = import_call(node.value)[1]  # type: ignore[attr-defined]
            if record is not None:
                found.modules.extend(record._replace(local=target.id)
                                     for target in node.targets  # type: ignore[attr-defined]
                                     if type(target) is ast.Name)
    return found


def load_names(node: ast.AST) -> set[str]:
    return scan(walk(node)).names


def definition_names(tree: ast.Module) -> set[str]:
    """Names a definition reads where it is defined, not in its body: decorators, defaults."""
    top = tree.body[0] if tree.body else None
    scopes = [top] if isinstance(top, DEFS) else \
        [n for n in walk(tree) if isinstance(n, ast.Lambda)]
    names: set[str] = set()
    for scope in scopes:
        for expr in [*getattr(scope, "decorator_list", []), *scope.args.defaults,
                     *(d for d in scope.args.kw_defaults if d is not None)]:
            names |= load_names(expr)
    return names


def attribute_chains(tree: ast.AST) -> list[list[str]]:
    return scan(walk(tree)).chains


def definition_spans(tree: ast.Module) -> dict[tuple[int, str], tuple[int, int]]:
    """(first line, name) → (first line, last line) of every function definition in a
    module's tree: where a function's source lies, found without tokenising the file."""
    return {(first_line(n), n.name): (first_line(n), n.end_lineno or n.lineno)
            for n in _definitions(tree)}


def top_level_definitions(tree: ast.Module) -> dict[tuple[int, str], ast.stmt]:
    """(first line, name) → node of the function definitions in a module's own
    statements (also inside ``if``, ``try`` …), not those in a function or class."""
    return {(first_line(n), n.name): n for n in _definitions(tree, nested=False)}


def _root_name(node: ast.expr) -> set[str]:
    """Names a target binds or builds: ``x``, ``a, b``, ``x[k]``, ``x.attr``."""
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, (ast.Tuple, ast.List)):
        return set().union(*(_root_name(e) for e in node.elts))
    if isinstance(node, (ast.Starred, ast.Attribute, ast.Subscript)):
        return _root_name(node.value)
    return set()


def bound_names(stmt: ast.stmt) -> set[str]:
    """The names ``stmt`` binds or builds: ``name = …``, ``name += …``, ``name[k] = …``,
    ``def name``, ``class name``, ``for name in …``, ``with … as name``, a ``case``
    pattern that captures ``name``, or ``name.append(…)``."""
    if isinstance(stmt, (*DEFS, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
        targets = [stmt.target]
    elif isinstance(stmt, (ast.With, ast.AsyncWith)):
        targets = [item.optional_vars for item in stmt.items if item.optional_vars]
    elif isinstance(stmt, ast.Match):
        return {name for case in stmt.cases for node in walk(case.pattern)
                for name in (getattr(node, "name", None), getattr(node, "rest", None))
                if name}
    elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) \
            and isinstance(stmt.value.func, ast.Attribute):
        targets = [stmt.value.func.value]
    else:
        return set()
    return set().union(*(_root_name(t) for t in targets))


def assigns(stmt: ast.stmt, name: str) -> bool:
    """Whether ``stmt`` binds or builds ``name`` (see :func:`bound_names`)."""
    return name in bound_names(stmt)


#: A statement normalised, and the names and ``name.attr…`` chains it reads.
StatementFacts = tuple[str, tuple[str, ...], tuple[tuple[str, ...], ...]]


class ModuleIndex:
    """A module's statements (also inside if/try/with/for blocks, not inside defs), and
    for each name the positions of those that may define it: the ones that bind or build
    it, and ``from … import`` statements that bind it or import ``*``. Built in one pass,
    so finding how a global is made does not rescan the module for every asset."""

    def __init__(self, tree: ast.Module) -> None:
        self.statements = flat_statements(tree.body)
        self._facts: dict[ast.stmt, StatementFacts] = {}
        self._candidates: dict[str, list[int]] = {}
        self._star_imports: list[int] = []
        for position, stmt in enumerate(self.statements):
            if isinstance(stmt, ast.ImportFrom):
                names = {alias.asname or alias.name for alias in stmt.names}
                if "*" in names:
                    self._star_imports.append(position)
            else:
                names = bound_names(stmt)
            for name in names:
                self._candidates.setdefault(name, []).append(position)

    def defining(self, name: str) -> list[ast.stmt]:
        """The statements that may define ``name``, in module order."""
        positions = sorted({*self._candidates.get(name, ()), *self._star_imports})
        return [self.statements[p] for p in positions]

    def facts(self, stmt: ast.stmt) -> StatementFacts:
        """A statement of this module normalised, with the names and ``name.attr…``
        chains it reads (worked out once: many assets read the same global)."""
        found = self._facts.get(stmt)
        if found is None:
            scanned = scan(walk(stmt))
            found = self._facts[stmt] = (normalise(stmt), tuple(sorted(scanned.names)),
                                         tuple(tuple(c) for c in scanned.chains))
        return found


def flat_statements(body: Iterable[ast.stmt]) -> list[ast.stmt]:
    """Statements of a block, also inside if/try/with/for/while/match blocks, not inside
    defs."""
    out: list[ast.stmt] = []
    for stmt in body:
        out.append(stmt)
        if not isinstance(stmt, (*DEFS, ast.ClassDef)):
            for block in _blocks(stmt):
                out.extend(flat_statements(block))
    return out


def path_to(node: ast.AST, match: Callable[[ast.AST], bool]) -> list[ast.AST] | None:
    """The nodes from ``node`` (excluded) down to the first one that matches."""
    for child in ast.iter_child_nodes(node):
        if match(child):
            return [child]
        path = path_to(child, match)
        if path is not None:
            return [child, *path]
    return None


def first_line(node: ast.AST) -> int:
    return min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])  # type: ignore[attr-defined]


def code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= code_names(const)
    return names


def bytecode_text(code: types.CodeType) -> str:
    """Last resort for code without source (``exec``, ``python -c``): its bytecode."""
    consts = [(bytecode_text(c) if isinstance(c, types.CodeType) else repr(c))
              for c in code.co_consts]
    return f"<bytecode {code.co_code.hex()} {consts} {list(code.co_names)}>"


def immutable_repr(value: Any) -> str | None:
    """Canonical text of an immutable constant (frozensets sorted), else None."""
    kind = type(value)
    if kind is int:
        try:
            return repr(value)
        except ValueError:  # more digits than sys.get_int_max_str_digits()
            return hex(value)
    if kind in IMMUTABLE_SCALARS:
        return repr(value)
    if kind is not tuple and kind is not frozenset:
        return None
    items = [immutable_repr(v) for v in value]
    if any(item is None for item in items):
        return None
    texts: list[str] = items  # type: ignore[assignment]
    if kind is frozenset:
        return f"frozenset({{{', '.join(sorted(texts))}}})" if texts else "frozenset()"
    return f"({texts[0]},)" if len(texts) == 1 else f"({', '.join(texts)})"
