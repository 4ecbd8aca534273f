"""Pure helpers that recognise imports in syntax trees: ``import`` statements are read
by :func:`kazeflow.fingerprint._syntax.scan`; here are the calls that import a module or read an
attribute by its name (``importlib.import_module``, ``__import__``, ``getattr``), with a
literal name (followed like an import) or a name known only at run time (warned about).
"""

from __future__ import annotations

import ast
import importlib.util
from typing import NamedTuple


class ModuleImport(NamedTuple):
    """A module that a function's body imports, by a statement or by a call with literal
    arguments: the name it binds there (``a`` for ``import a.b``, ``z`` for ``import a.b
    as z`` or ``z = importlib.import_module("a.b")``, ``<import_module a.b>`` for a call
    whose result is used in place), the module (without the dots of a relative import),
    those dots, and whether the name is bound to the top-level package (``import a.b``,
    ``__import__("a.b")``) rather than to the module itself."""

    local: str
    module: str
    level: int
    top: bool


class DynamicImport(NamedTuple):
    """A construct that picks a module or attribute by a name known only at run time:
    its line (in the tree it was found in), its text, and for ``getattr`` the dotted name
    of the object it reads from (a warning is due only if that is a user module)."""

    line: int
    text: str
    target: tuple[str, ...]


#: Calls that import a module or read an attribute by its name.
_IMPORT_CALLS = frozenset({"import_module", "__import__", "getattr"})


def _callee(call: ast.Call) -> str | None:
    """``import_module``, ``__import__`` or ``getattr`` if ``call`` calls one of them."""
    func = call.func
    if type(func) is ast.Name:
        name = func.id
    elif type(func) is ast.Attribute and func.attr == "import_module":
        name = func.attr
    else:
        return None
    return name if name in _IMPORT_CALLS else None


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    if len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def _literal(node: ast.expr | None) -> str | None:
    return node.value if type(node) is ast.Constant and type(node.value) is str else None


def import_call(call: ast.Call) -> tuple[str | None, ModuleImport | None]:
    """For a call of ``importlib.import_module`` or ``__import__``: its callee and what
    it imports (None when the name is not a literal); for any other call (None, None)."""
    callee = _callee(call)
    if callee is None or callee == "getattr" or \
            any(type(a) is ast.Starred for a in call.args):
        return None, None
    name = _literal(_argument(call, 0, "name"))
    if name is None:
        return callee, None
    if callee == "import_module":
        level = len(name) - len(name.lstrip("."))
        top = False
        if level:
            package = _argument(call, 1, "package")
            if type(package) is ast.Name and package.id == "__package__":
                pass  # relative to the module of the function
            elif (literal := _literal(package)) is not None:
                try:
                    name, level = importlib.util.resolve_name(name, literal), 0
                except (ImportError, ValueError):
                    return callee, None
            else:
                return callee, None
    else:
        level_node = _argument(call, 4, "level")
        if level_node is None:
            level = 0
        elif type(level_node) is ast.Constant and type(level_node.value) is int:
            level = level_node.value
        else:
            return callee, None
        fromlist = _argument(call, 3, "fromlist")
        top = fromlist is None or (type(fromlist) is ast.Constant and not fromlist.value) \
            or (type(fromlist) in (ast.Tuple, ast.List) and not fromlist.elts)  # type: ignore[attr-defined]
    module = name[level:]
    if not module or not all(part.isidentifier() for part in module.split(".")):
        return callee, None
    return callee, ModuleImport(f"<{callee} {'.' * level}{module}>", module, level, top)


def chain_of(node: ast.expr) -> list[str] | None:
    """The dotted name ``node`` stands for: ``a.b``, ``getattr(a, "b")``, or an import
    call with a literal name (as the name it is bound to), else None."""
    kind = type(node)
    if kind is ast.Name:
        return [node.id]  # type: ignore[attr-defined]
    if kind is ast.Attribute:
        root = chain_of(node.value)  # type: ignore[attr-defined]
        return None if root is None else [*root, node.attr]  # type: ignore[attr-defined]
    if kind is not ast.Call:
        return None
    callee, record = import_call(node)  # type: ignore[arg-type]
    if record is not None:
        return [record.local]
    if callee is None and _callee(node) == "getattr":  # type: ignore[arg-type]
        attr = _literal(_argument(node, 1, "name"))  # type: ignore[arg-type]
        root = chain_of(node.args[0]) if node.args and attr else None  # type: ignore[attr-defined]
        return None if root is None else [*root, attr]  # type: ignore[list-item]
    return None


def scan_call(call: ast.Call, chains: list[list[str]], modules: list[ModuleImport],
              dynamic: list[DynamicImport]) -> None:
    """Add what ``call`` imports or reads to ``modules``, ``chains`` or ``dynamic``, if
    it imports a module or reads an attribute by its name."""
    callee, record = import_call(call)
    if record is not None:
        modules.append(record)
        return
    if callee is not None:  # import_module(name), __import__(name)
        dynamic.append(DynamicImport(call.lineno, _text(call), ()))
        return
    if _callee(call) != "getattr" or len(call.args) < 2:
        return
    target = chain_of(call.args[0])
    if target is None:
        return
    attr = _literal(call.args[1])
    if attr is not None:
        chains.append([*target, attr])
    else:
        dynamic.append(DynamicImport(call.lineno, _text(call), tuple(target)))


def _text(node: ast.AST, limit: int = 80) -> str:
    text = ast.unparse(node)
    return text if len(text) <= limit else text[:limit - 3] + "..."
