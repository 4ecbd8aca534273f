"""One function's source, read and analysed once: memoised in this process by code
object, and across processes in the store's source cache (:mod:`kazeflow.fingerprint._cache`).

An analysis is the function's normalised text (docstrings, comments and formatting
gone), the global names and ``module.attribute`` chains it reads, the ``from … import``
inside it, and how its decorators were judged (kazeflow's own are dropped from the
text). :mod:`kazeflow.fingerprint._code` follows what the names resolve to.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import os
import types
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from kazeflow.context import log
from kazeflow.fingerprint._cache import SourceCache
from kazeflow.fingerprint._imports import DynamicImport, ModuleImport
from kazeflow.fingerprint._syntax import (
    DEFS,
    bytecode_text,
    code_names,
    definition_names,
    definition_spans,
    first_line,
    normalise,
    parse_module,
    parse_source,
    scan,
    top_level_definitions,
    walk,
)


def is_kazeflow(module_name: object) -> bool:
    """Whether ``module_name`` is kazeflow or one of its modules."""
    return isinstance(module_name, str) and module_name.split(".")[0] == "kazeflow"


def _decorator_chain(node: ast.expr) -> tuple[str, ...] | None:
    """The dotted name a decorator starts from (``("kazeflow", "asset")`` for
    ``@kazeflow.asset(...)``), or None for any other expression."""
    while isinstance(node, ast.Call):
        node = node.func
    chain: list[str] = []
    while isinstance(node, ast.Attribute):
        chain.append(node.attr)
        node = node.value
    return (node.id, *reversed(chain)) if isinstance(node, ast.Name) else None


def _is_kazeflow_chain(chain: Sequence[str] | None, namespace: Mapping[str, Any]) -> bool:
    """Whether a decorator's dotted name is kazeflow's (``asset``, ``kazeflow.asset``)."""
    if chain is None:
        return False
    obj = namespace.get(chain[0])
    for attr in chain[1:]:
        if not isinstance(obj, types.ModuleType):
            break
        obj = getattr(obj, attr, None)
    return is_kazeflow(obj.__name__ if isinstance(obj, types.ModuleType)
                       else getattr(obj, "__module__", None))


Decorators = tuple[tuple[tuple[str, ...] | None, bool], ...]


def drop_kazeflow_decorators(tree: ast.Module, namespace: Mapping[str, Any]) -> Decorators:
    """Remove kazeflow's decorators from the definitions in ``tree`` (in place); return
    every decorator's dotted name and whether it was kazeflow's."""
    seen = []
    for node in tree.body:
        if isinstance(node, (*DEFS, ast.ClassDef)):
            kept = []
            for decorator in node.decorator_list:
                chain = _decorator_chain(decorator)
                ours = _is_kazeflow_chain(chain, namespace)
                seen.append((chain, ours))
                if not ours:
                    kept.append(decorator)
            node.decorator_list = kept
    return tuple(seen)


class FunctionSource(NamedTuple):
    """What a function's own source says: its normalised text, the global names and
    ``module.attribute`` chains it reads, the ``from … import`` inside it, the other
    imports inside it (``import x``, ``importlib.import_module("x")`` …) and the
    constructs that pick a module or attribute at run time, with their line in the file
    (a tuple: one is made per function a run fingerprints)."""

    text: str
    names: tuple[str, ...]
    chains: tuple[tuple[str, ...], ...]
    imports: tuple[ast.ImportFrom, ...]
    modules: tuple[ModuleImport, ...] = ()
    dynamic: tuple[DynamicImport, ...] = ()


#: Analyses by code object. A code object never changes and a redefined function gets
#: a new one, so an entry never goes stale; what the names *resolve to* (globals that a
#: notebook cell or a reload rebinds) is looked up afresh by every fingerprint.
_SOURCES: dict[types.CodeType, FunctionSource] = {}
_SOURCES_MAX = 100_000


def function_source(fn: Any, cache: SourceCache | None) -> FunctionSource:
    code: types.CodeType = fn.__code__
    result = _SOURCES.get(code)
    if result is not None:
        return result
    where = entry_key(fn)
    result = None
    if cache is not None and (entry := cache.get(*where)) is not None:
        result = _decode(entry, fn.__globals__, cache.memo)
    if result is None:
        result, decorators = _analyse(fn, cache.memo if cache is not None else None)
        if cache is not None and decorators is not None:
            cache.put(*where, _encode(result, decorators))
    if len(_SOURCES) >= _SOURCES_MAX:
        _SOURCES.clear()
    _SOURCES[code] = result
    return result


def entry_key(fn: Any) -> tuple[str, str, int]:
    """The key of ``fn``'s entry in a source cache: file, qualified name, first line."""
    code: types.CodeType = fn.__code__
    return _absolute(code.co_filename), fn.__qualname__, code.co_firstlineno


#: Absolute file names (of absolute ``co_filename``s: a relative one follows the cwd).
_ABSOLUTE: dict[str, str] = {}


def _absolute(filename: str) -> str:
    absolute = _ABSOLUTE.get(filename)
    if absolute is None:
        absolute = os.path.abspath(filename)
        if os.path.isabs(filename):
            _ABSOLUTE[filename] = absolute
    return absolute


def _analyse(fn: Any, memo: dict[Any, Any] | None = None
             ) -> tuple[FunctionSource, Decorators | None]:
    """Read and analyse ``fn``'s source; also how its decorators were judged (None
    when it has no source and its bytecode stands in). ``memo``: see
    :func:`_definition_tree`."""
    code: types.CodeType = fn.__code__
    try:
        tree = _definition_tree(fn, {} if memo is None else memo)
    except (OSError, TypeError):
        tree = None
    if tree is None:
        log.debug("no source for %s; hashing its bytecode", fn)
        return FunctionSource(bytecode_text(code), tuple(sorted(code_names(code))), (),
                              ()), None
    # the tree's lines count from the definition's first line, or from the file's
    shift = code.co_firstlineno - first_line(tree.body[0]) if tree.body else 0
    decorators = drop_kazeflow_decorators(tree, fn.__globals__)
    nodes = walk(tree)
    found = scan(nodes)
    wanted = code_names(code) | definition_names(tree)
    return FunctionSource(
        normalise(tree, in_place=True, nodes=nodes), tuple(sorted(found.names & wanted)),
        tuple(tuple(c) for c in found.chains), tuple(found.imports),
        tuple(dict.fromkeys(found.modules)),
        tuple(d._replace(line=d.line + shift) for d in found.dynamic)), decorators


Spans = dict[tuple[int, str], tuple[int, int]]

#: Function spans of each source file, with the linecache lines they were found in.
_SPANS: dict[str, tuple[list[str], Spans]] = {}


def _definition_tree(fn: Any, memo: dict[Any, Any]) -> ast.Module | None:
    """The syntax tree of ``fn``'s definition, as parsing :func:`inspect.getsource`
    would give it, but located in its file's tree (parsed once per file) rather than by
    tokenising the file again for every function.

    A function defined in the module's own statements takes its node from that tree
    when it was parsed for this ``memo`` (one run's scratch space), sparing a parse of
    its text; each node is used once, as the analysis changes it in place. Other
    functions' text is parsed; lambdas and anything not found fall back to
    :func:`inspect.getsource`.
    """
    code: types.CodeType = fn.__code__
    if fn.__name__ != "<lambda>":
        lines, spans, nodes = _file_definitions(code.co_filename, fn.__globals__, memo)
        where = (code.co_firstlineno, fn.__name__)
        node = nodes.pop(where, None)
        if node is not None:
            return ast.Module(body=[node], type_ignores=[])
        span = spans.get(where)
        if span is not None:
            return parse_source("".join(lines[span[0] - 1:span[1]]))
    return parse_source(inspect.getsource(fn))


def _file_definitions(filename: str, namespace: dict[str, Any], memo: dict[Any, Any]
                      ) -> tuple[list[str], Spans, dict[tuple[int, str], ast.stmt]]:
    """The lines of ``filename``, its function spans, and the unused nodes of its
    top-level functions if this ``memo`` parsed it; the file is checked for changes
    once per memo."""
    key = ("definitions", filename)
    found = memo.get(key)
    if found is None:
        linecache.checkcache(filename)
        lines = linecache.getlines(filename, namespace)
        cached = _SPANS.get(filename)
        nodes = {}
        if cached is None or cached[0] is not lines:
            try:
                tree = parse_module("".join(lines))
            except SyntaxError:
                spans: Spans = {}
            else:
                spans, nodes = definition_spans(tree), top_level_definitions(tree)
            cached = _SPANS[filename] = (lines, spans)
        found = memo[key] = (*cached, nodes)
    return found  # type: ignore[no-any-return]


def _encode(source: FunctionSource, decorators: Decorators) -> tuple[Any, ...]:
    """A source analysis as plain data for the persistent cache."""
    imports = (tuple(encode_import(n) for n in source.imports),
               tuple(tuple(m) for m in source.modules),
               tuple(tuple(d) for d in source.dynamic)) \
        if source.imports or source.modules or source.dynamic else ()  # most have none
    return source.text, source.names, source.chains, imports, decorators


def encode_import(node: ast.ImportFrom) -> tuple[Any, ...]:
    return node.module, node.level, tuple((a.name, a.asname) for a in node.names)


def decode_import(data: Any) -> ast.ImportFrom:
    module, level, aliases = data
    return ast.ImportFrom(module=module, names=[ast.alias(n, a) for n, a in aliases],
                          level=level)


def _decode(entry: Any, namespace: Mapping[str, Any], judged: dict[Any, bool]
            ) -> FunctionSource | None:
    """The analysis in a cache entry; None if it does not apply (a decorator's name now
    means something else in ``namespace``) or is not an entry at all (a damaged cache).
    ``judged`` memoises whether a decorator is kazeflow's, by namespace, for one run."""
    try:
        text, names, chains, imports, decorators = entry[:5]  # [5]: see _code._digest
        for chain, ours in decorators:
            where = (id(namespace), chain)
            theirs = judged.get(where)
            if theirs is None:
                theirs = judged[where] = _is_kazeflow_chain(chain, namespace)
            if theirs != ours:
                return None
        if not imports:  # most functions import nothing
            return FunctionSource(text, names, chains, ())
        froms, modules, dynamic = imports
        return FunctionSource(text, names, chains, tuple(map(decode_import, froms)),
                              tuple(ModuleImport(*m) for m in modules),
                              tuple(DynamicImport(*d) for d in dynamic))
    except (TypeError, ValueError):
        return None


def clear() -> None:
    """Forget what this process memoised (see ``_code.clear_memory_caches``)."""
    _SOURCES.clear()
    _ABSOLUTE.clear()
    _SPANS.clear()
