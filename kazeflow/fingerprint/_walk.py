"""The walk from one function through the user code it reaches, naming the components
of its code fingerprint (what is followed and how: see :mod:`kazeflow.fingerprint._code`)."""

from __future__ import annotations

import ast
import builtins
import inspect
import sys
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from kazeflow.fingerprint._cache import SourceCache
from kazeflow.fingerprint._imports import DynamicImport
from kazeflow.fingerprint._modules import module_file, parsed_module
from kazeflow.fingerprint._source import (
    FunctionSource,
    decode_import,
    drop_kazeflow_decorators,
    encode_import,
    function_source,
)
from kazeflow.fingerprint._syntax import (
    SCOPES,
    StatementFacts,
    assigns,
    first_line,
    flat_statements,
    immutable_repr,
    normalise,
    parse_source,
    path_to,
    scan,
    walk,
)
from kazeflow.fingerprint._unseen import computed_by_call, data_like, warn_untraced
from kazeflow.fingerprint._user import is_user_module, resolve, user_module

#: Attributes describing a module rather than its code (``__name__`` is ``"__main__"``
#: when a file runs as a script, ``__file__`` moves with the project).
_MODULE_DUNDERS = frozenset({"__builtins__", "__cached__", "__doc__", "__file__",
                             "__loader__", "__name__", "__package__", "__path__", "__spec__"})


def unwrap(obj: Any) -> Any:
    """The user function under ``functools.wraps``-style wrappers (``functools.cache``)."""
    if not callable(obj) or not hasattr(obj, "__wrapped__"):
        return obj
    try:
        inner = inspect.unwrap(obj)
    except ValueError:  # a cycle of __wrapped__
        return obj
    return inner if isinstance(inner, types.FunctionType) else obj


def _import_source(stmt: ast.ImportFrom, module_name: str) -> str | None:
    """The loaded user module that ``stmt`` (in ``module_name``) imports from, if any."""
    source = resolve(stmt.module, stmt.level, module_name)
    return source if source in sys.modules and is_user_module(source) else None


class Collector:
    """Walks from one function through the user code it reaches, naming components."""

    def __init__(self, root_module: str, cache: SourceCache | None = None) -> None:
        self.root_module = root_module
        self.cache = cache
        self.components: dict[str, str] = {}
        self._owners: dict[str, object] = {}
        #: Constructs the walk cannot follow: (file, line, text).
        self.dynamic: list[tuple[str, int, str]] = []
        #: Module-level data values read that a call computes: (module, name, statement).
        self.computed: list[tuple[str, str, str]] = []
        #: Top-level modules of the libraries reached (their versions are recorded).
        self.libraries: set[str] = set()

    def key(self, module_name: str, qualname: str) -> str:
        """Component name: bare qualname in the asset's own module, else module:qualname."""
        return qualname if module_name == self.root_module else f"{module_name}:{qualname}"

    def key_of(self, obj: Any) -> str:
        return self.key(obj.__module__, obj.__qualname__)

    def add_function(self, fn: Callable[..., Any], binding: str | None = None) -> str:
        """Add ``fn`` (reached under the name ``binding``) and what it reads; its key."""
        fn = unwrap(fn)
        key = self._function_key(fn, binding)
        if key in self.components:
            return key
        self.components[key] = ""  # claims the key first: recursion stops here
        self._owners[key] = fn
        code: types.CodeType = fn.__code__
        namespace: dict[str, Any] = fn.__globals__
        source = function_source(fn, self.cache)
        self.components[key] = source.text
        if source.imports or source.modules:
            namespace = {**namespace, **self._local_imports(source, fn.__module__)}
        if source.dynamic:
            self._note_dynamic(source.dynamic, namespace, code.co_filename)
        names, chains = source.names, source.chains
        self._visit_names(names, chains, namespace, fn.__module__)
        for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            self._visit_value(f"{key}.<closure>.{name}", value, fn.__module__, name, fn)
        return key

    def _function_key(self, fn: Any, binding: str | None) -> str:
        """Qualname key, or the binding for lambdas and for a second function of one
        qualname (two closures made by one factory)."""
        key = self.key_of(fn)
        if binding is not None and ("<lambda>" in key or self._owners.get(key, fn) is not fn):
            return binding
        return key

    def add_class(self, cls: type) -> None:
        key = self.key_of(cls)
        if key in self.components:
            return
        self.components[key] = ""
        module = sys.modules.get(cls.__module__)
        namespace: Mapping[str, Any] = vars(module) if module else {}
        try:
            lines, start = inspect.getsourcelines(cls)
            tree = parse_source("".join(lines))
        except (OSError, TypeError):
            tree = None
        if tree is None:  # made at run time: namedtuple("Point", ...), type(...)
            self._add_assignment(key, cls.__module__, cls.__name__, cls)
            return
        shift = start - first_line(tree.body[0]) if tree.body else 0
        drop_kazeflow_decorators(tree, namespace)
        nodes = walk(tree)
        found = scan(nodes)
        self.components[key] = normalise(tree, in_place=True, nodes=nodes)
        methods = FunctionSource("", (), (), tuple(found.imports), tuple(found.modules),
                                 tuple(d._replace(line=d.line + shift)
                                       for d in found.dynamic))
        if methods.imports or methods.modules:
            namespace = {**namespace, **self._local_imports(methods, cls.__module__)}
        if methods.dynamic:
            self._note_dynamic(methods.dynamic, namespace, inspect.getfile(cls))
        self._visit_names(sorted(found.names), found.chains, namespace, cls.__module__)

    def _visit_names(self, names: Iterable[str], chains: Iterable[Sequence[str]],
                     namespace: Mapping[str, Any], module_name: str) -> None:
        for name in names:
            if name in namespace:
                self._visit_value(self.key(module_name, name), namespace[name],
                                  module_name, name)
        for chain in chains:
            obj = namespace.get(chain[0])
            if isinstance(obj, types.ModuleType):
                self._note_library(obj.__name__)
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

    def _visit_value(self, key: str, value: Any, module_name: str, name: str,
                     closure_of: Any = None) -> None:
        """Add the component of ``value``, read as ``name`` in ``module_name`` (or in the
        closure of function ``closure_of``)."""
        from kazeflow.assets import Asset  # a cycle at import time otherwise

        if isinstance(value, Asset):
            value = value.fn
        value = unwrap(value)
        if isinstance(value, types.ModuleType):
            self._note_library(value.__name__)
            return
        if name in _MODULE_DUNDERS or key in self.components:
            return
        text = immutable_repr(value)
        if text is not None:
            self.components[key] = "= " + text
        elif isinstance(value, types.FunctionType):
            if is_user_module(value.__module__):
                self.add_function(value, key)
            else:
                self._note_library(value.__module__)
        elif isinstance(value, type):
            if is_user_module(value.__module__):
                self.add_class(value)
            else:
                self._note_library(value.__module__)
        elif isinstance(value, (types.BuiltinFunctionType, types.MethodType,
                                types.MethodWrapperType)) or value is getattr(builtins, name,
                                                                               None):
            return
        elif closure_of is not None:
            self._add_closure_assignment(key, closure_of, name, value)
        elif is_user_module(module_name):
            self._add_assignment(key, module_name, name, value)

    def _note_library(self, module_name: str | None) -> None:
        """Note the library of ``module_name`` (not the standard library, kazeflow or the
        user's code), whose version is recorded with the materialization."""
        top = (module_name or "").partition(".")[0]
        if top and top not in self.libraries and top not in sys.stdlib_module_names \
                and top != "kazeflow" and not is_user_module(top):
            self.libraries.add(top)

    def _add_assignment(self, key: str, module_name: str, name: str, value: Any) -> None:
        """Name a non-constant global by the module-level statements that build it."""
        self.components[key] = ""
        chosen = []
        for definition in self._definitions(module_name, name):
            node = definition[3]
            if node is not None:  # ``from … import``: does it import this name?
                source = self._imported_from(node, module_name, name)
                if source is None:
                    continue
                self._visit_value(self.key(*source), value, *source)
            chosen.append(definition[:3])
        module = sys.modules.get(module_name)
        self._set_component(key, chosen, vars(module) if module else {}, module_name,
                            name, value)

    def _definitions(self, module_name: str, name: str) -> list[_Definition]:
        """The module-level statements that may define ``name``, from the persistent
        cache while the module's file is unchanged (no parse in a new process)."""
        filename = module_file(module_name)
        if filename is None:  # no source to read
            return []
        # first line 0: the entry of a module-level name, not of a function
        entry = self.cache.get(filename, name, 0) if self.cache is not None else None
        found = _decode_definitions(entry) if entry is not None else None
        if found is None:
            parsed = parsed_module(module_name)
            if parsed is None:
                return []
            found = [(*parsed[1].facts(stmt),
                      stmt if isinstance(stmt, ast.ImportFrom) else None)
                     for stmt in parsed[1].defining(name)]
            if self.cache is not None:
                self.cache.put(filename, name, 0, _encode_definitions(found))
        return found

    def _local_imports(self, source: FunctionSource, module_name: str) -> dict[str, Any]:
        """What the imports inside a function bind, for user modules (imported now if
        they are not loaded yet): local name → object, so that what the body reaches
        through them is hashed as if they were imported at module level."""
        found: dict[str, Any] = {}
        for node in source.imports:
            origin = resolve(node.module, node.level, module_name)
            module = user_module(origin)
            if module is None:
                continue
            for alias in node.names:
                if hasattr(module, alias.name):
                    value = getattr(module, alias.name)
                else:  # a submodule not imported yet: ``from . import x``
                    value = user_module(f"{origin}.{alias.name}")
                if value is not None:
                    found[alias.asname or alias.name] = value
                    self._visit_value(self.key(module.__name__, alias.name), value,
                                      module.__name__, alias.name)
        for record in source.modules:
            origin = resolve(record.module, record.level, module_name)
            module = user_module(origin)
            if module is not None:
                found[record.local] = sys.modules[module.__name__.partition(".")[0]] \
                    if record.top else module
        return found

    def _note_dynamic(self, sites: Iterable[DynamicImport], namespace: Mapping[str, Any],
                      filename: str) -> None:
        """Keep the constructs that pick a module at run time, or an attribute of a user
        module (``getattr(obj, name)`` on anything else is no import)."""
        for site in sites:
            if site.target:
                obj = namespace.get(site.target[0])
                for attr in site.target[1:]:
                    obj = getattr(obj, attr, None) if isinstance(obj, types.ModuleType) \
                        else None
                if not isinstance(obj, types.ModuleType) or not is_user_module(obj.__name__):
                    continue
            self.dynamic.append((filename, site.line, site.text))

    def _imported_from(self, stmt: ast.ImportFrom, module_name: str, name: str
                       ) -> tuple[str, str] | None:
        """(user module, name there) if ``stmt`` imports ``name`` from a user module."""
        source = _import_source(stmt, module_name)
        if source is None:
            return None
        for alias in stmt.names:
            if (alias.asname or alias.name) == name:
                return source, alias.name
            if alias.name == "*" and hasattr(sys.modules.get(source), name):
                return source, name
        return None

    def _add_closure_assignment(self, key: str, fn: Any, name: str, value: Any) -> None:
        """Name a non-constant closure cell by the statements of the enclosing function
        that assign it."""
        self.components[key] = ""
        statements: list[ast.stmt] = []
        parsed = parsed_module(fn.__module__)
        for scope in _enclosing_scopes(fn, parsed[0] if parsed else None):
            body = scope.body if isinstance(scope.body, list) else []
            statements = [s for s in flat_statements(body) if assigns(s, name)]
            if statements or name in {a.arg for a in ast.walk(scope.args)
                                      if isinstance(a, ast.arg)}:
                break
        facts = [parsed[1].facts(s) for s in statements] if parsed else []
        self._set_component(key, facts, fn.__globals__, fn.__module__, name, value)

    def _set_component(self, key: str, facts: Sequence[StatementFacts],
                       namespace: Mapping[str, Any], module_name: str, name: str,
                       value: Any) -> None:
        """Make the statements ``facts`` describe the component ``key`` and follow the
        names they read."""
        if not facts:
            self.components[key] = f"<{type(value).__qualname__} object>"
            warn_untraced(module_name, name, value)
            return
        self.components[key] = "\n".join(text for text, _, _ in facts)
        if data_like(value):
            called = next((text for text, _, _ in facts if computed_by_call(text)), None)
            if called is not None:
                self.computed.append((module_name, name, called.strip().splitlines()[0]))
        names = set().union(*(names for _, names, _ in facts)) - {name}
        chains = [c for _, _, found in facts for c in found]
        self._visit_names(sorted(names), chains, namespace, module_name)


#: A statement that may define a global: its facts, and for ``from … import`` the
#: statement itself (whether it imports the global is decided at run time).
_Definition = tuple[str, tuple[str, ...], tuple[tuple[str, ...], ...],
                    ast.ImportFrom | None]


def _encode_definitions(found: list[_Definition]) -> tuple[Any, ...]:
    return tuple((*facts, None if node is None else encode_import(node))
                 for *facts, node in found)


def _decode_definitions(entry: Any) -> list[_Definition] | None:
    try:
        return [(text, names, chains, None if node is None else decode_import(node))
                for text, names, chains, node in entry]
    except (TypeError, ValueError):  # not an entry of this kind: analyse afresh
        return None


def _enclosing_scopes(fn: Any, tree: ast.Module | None) -> list[Any]:
    """The function nodes around ``fn``'s definition in its module's ``tree``,
    innermost first."""
    first = fn.__code__.co_firstlineno

    def is_fn(node: ast.AST) -> bool:
        return isinstance(node, SCOPES) and first_line(node) == first and \
            getattr(node, "name", "<lambda>") == fn.__name__

    path = path_to(tree, is_fn) if tree is not None else None
    return [n for n in (path or [])[-2::-1] if isinstance(n, SCOPES)]
