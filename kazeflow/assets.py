"""``@asset``: declare a function whose result is worth keeping, and the asset registry."""

from __future__ import annotations

import inspect
import keyword
import os
import threading
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from kazeflow.config import Config
from kazeflow.errors import DefinitionError, DuplicateAssetError

#: Parameter names that receive something other than an upstream value.
RESERVED_PARAMETERS = frozenset({"config", "context"})
#: The longest asset name the metadata database holds (its ``asset_name`` column).
MAX_NAME_LENGTH = 255


@dataclass(frozen=True, eq=False)
class Asset:
    """A declared asset: its function and how it fits into a flow.

    Calling an ``Asset`` calls the plain function, which keeps assets easy to unit-test.
    """

    name: str
    fn: Callable[..., Any] = field(repr=False)
    deps: tuple[str, ...]
    inputs: tuple[str, ...]
    config_schema: type[Config] | None = None
    code_version: str | None = None
    description: str | None = None
    cache: bool = True
    takes_config: bool = False
    takes_context: bool = False
    pool: str | None = None
    dep_assets: tuple[Asset, ...] = field(default=(), repr=False)
    #: Files, folders and globs the asset reads (their contents enter its cache key),
    #: relative to ``reads_base``: the folder of the file that defines the function.
    #: None: not declared (``()``: declared to read none).
    reads: tuple[str, ...] | None = None
    reads_base: str = field(default="", repr=False)
    #: Whether the versions of the libraries its code imports enter its cache key.
    track_libraries: bool = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    @property
    def definition(self) -> str:
        """Where the function is defined, as ``module:line (qualname)``."""
        code = getattr(self.fn, "__code__", None)
        line = code.co_firstlineno if code else "?"
        return f"{self.fn.__module__}:{line} ({self.fn.__qualname__})"

    @property
    def _identity(self) -> tuple[str, str]:
        return (self.fn.__module__, self.fn.__qualname__)


class AssetRegistry:
    """Name → asset for every ``@asset`` defined in this process."""

    def __init__(self) -> None:
        self._assets: dict[str, Asset] = {}
        self._lock = threading.Lock()

    def register(self, new: Asset) -> None:
        """Add ``new``; the same function defined again (a re-run cell) replaces the old one.

        Raises:
            DuplicateAssetError: a different function already claims the name.
        """
        with self._lock:
            old = self._assets.get(new.name)
            if old is not None and old._identity != new._identity:
                raise DuplicateAssetError(
                    f"asset name {new.name!r} is defined twice: by {old.definition} and by "
                    f"{new.definition}; rename one of them (@asset(name=...))",
                    asset_name=new.name, definitions=[old.definition, new.definition])
            self._assets[new.name] = new

    def snapshot(self) -> dict[str, Asset]:
        """A copy of the registered assets by name."""
        with self._lock:
            return dict(self._assets)

    def clear(self) -> None:
        """Forget every registered asset (for tests and notebooks)."""
        with self._lock:
            self._assets.clear()


registry = AssetRegistry()


@overload
def asset(fn: Callable[..., Any], /) -> Asset: ...


@overload
def asset(
    *, name: str | None = None, deps: Sequence[str | Asset] | None = None,
    config_schema: type[Config] | None = None, code_version: str | None = None,
    description: str | None = None, cache: bool = True, pool: str | None = None,
    reads: Sequence[str | os.PathLike[str]] | None = None, track_libraries: bool = False,
) -> Callable[[Callable[..., Any]], Asset]: ...


def asset(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None,
    deps: Sequence[str | Asset] | None = None, config_schema: type[Config] | None = None,
    code_version: str | None = None, description: str | None = None, cache: bool = True,
    pool: str | None = None, reads: Sequence[str | os.PathLike[str]] | None = None,
    track_libraries: bool = False,
) -> Asset | Callable[[Callable[..., Any]], Asset]:
    """Declare a function as an asset, bare (``@asset``) or with options.

    Args:
        name: the asset's name; defaults to the function's name.
        deps: upstream assets (names or asset objects). Without ``deps`` the function's
            parameters other than ``config`` and ``context`` name the upstreams. An
            upstream that is not a parameter still orders the run and enters the cache key.
        config_schema: ``Config`` or a subclass; required for the asset to take config.
        code_version: a version string replacing the automatic code hash.
        description: a human description (defaults to the docstring's first line).
        cache: ``False`` runs the asset every time (it reads external state).
        pool: a named resource (``"gpu"``): a parallel run never runs more assets of one
            pool at once than its size (``Flow.run(pools={"gpu": 2})``, default 1).
        reads: files, folders (every file under them) and globs (``"params/*.json"``,
            ``**`` spans folders) that the function reads: their contents enter the
            cache key, so editing one re-runs the asset. Relative paths start at the
            folder of the file that defines the function. Declaring it (``reads=[]``
            for none) also silences the warning about module-level values computed
            by a call.
        track_libraries: put the versions of the libraries its code imports (which are
            recorded with every materialization either way) in its cache key, so
            upgrading one re-runs the asset (``Flow(track_libraries=True)``: every asset).

    Returns:
        The registered :class:`Asset`.

    Raises:
        DefinitionError: an invalid name, signature or option.
        DuplicateAssetError: another function already claims the name.

    Example::

        @asset(deps=["raw_data"], config_schema=Config)
        def processed_data(config, raw_data):
            return sum(raw_data) * config.get("multiplier", 1)
    """

    def decorate(func: Callable[..., Any]) -> Asset:
        new = _build_asset(func, name=name, deps=deps, config_schema=config_schema,
                           code_version=code_version, description=description, cache=cache,
                           pool=pool, reads=reads, track_libraries=track_libraries)
        registry.register(new)
        return new

    if fn is not None:
        return decorate(fn)
    return decorate


def _build_asset(
    func: Callable[..., Any], *, name: str | None, deps: Sequence[str | Asset] | None,
    config_schema: type[Config] | None, code_version: str | None, description: str | None,
    cache: bool, pool: str | None = None,
    reads: Sequence[str | os.PathLike[str]] | None = None, track_libraries: bool = False,
) -> Asset:
    if isinstance(func, Asset):
        raise DefinitionError(f"{func.name!r} is already an asset; apply @asset once")
    if not callable(func) or not hasattr(func, "__code__"):
        raise DefinitionError(f"@asset needs a Python function, got {type(func).__name__}")
    asset_name = name if name is not None else func.__name__
    _check_name(asset_name, func)
    where = _Where(asset_name, func)
    params = _parameters(func, where)
    takes_config, takes_context = "config" in params, "context" in params
    inputs = tuple(p for p in params if p not in RESERVED_PARAMETERS) \
        if takes_config or takes_context else params
    dep_assets = tuple(d for d in deps if isinstance(d, Asset)) if deps else ()
    if deps is None:
        dep_names = inputs
    else:
        if isinstance(deps, str):
            raise DefinitionError(f"{where}: deps must be a list of names, not a string; "
                                  f"write deps=[{deps!r}]")
        dep_names = tuple(_dep_name(d, where) for d in deps)
        missing = [p for p in inputs if p not in dep_names]
        if missing:
            raise DefinitionError(
                f"{where}: parameter {missing[0]!r} is not an upstream; add it to deps "
                f"or remove the parameter")
    if len(set(dep_names)) != len(dep_names):
        raise DefinitionError(f"{where}: deps lists an upstream twice: {list(dep_names)}")
    if asset_name in dep_names:
        raise DefinitionError(f"{where} depends on itself")
    if takes_config and config_schema is None:
        raise DefinitionError(
            f"{where} takes a 'config' parameter but declares no config_schema; "
            "use @asset(config_schema=Config) or a Config subclass")
    if config_schema is not None and not (
            isinstance(config_schema, type) and issubclass(config_schema, Config)):
        raise DefinitionError(f"{where}: config_schema must be Config or a subclass of it, "
                              f"got {config_schema!r}")
    if code_version is not None and (not isinstance(code_version, str) or not code_version):
        raise DefinitionError(f"{where}: code_version must be a non-empty string")
    if pool is not None and (not isinstance(pool, str) or not pool):
        raise DefinitionError(f"{where}: pool must be a non-empty name such as 'gpu', "
                              f"got {pool!r}")
    read_paths = _check_reads(reads, where)
    if description is None and func.__doc__:
        description = _first_line(func.__doc__)
    # Filled in directly rather than through the frozen dataclass's __init__ (one
    # object.__setattr__ per field): every process decorates every asset of its flows.
    new = object.__new__(Asset)
    object.__setattr__(new, "__dict__", {
        "name": asset_name, "fn": func, "deps": dep_names, "inputs": inputs,
        "config_schema": config_schema, "code_version": code_version,
        "description": description, "cache": bool(cache), "takes_config": takes_config,
        "takes_context": takes_context, "pool": pool, "dep_assets": dep_assets,
        "reads": read_paths, "reads_base": _defining_folder(func) if read_paths else "",
        "track_libraries": bool(track_libraries)})
    return new


class _Where:
    """``asset 'name' (module.qualname)`` for error messages, spelt out only when one is
    raised (a flow of thousands of assets is decorated in every process)."""

    __slots__ = ("name", "func")

    def __init__(self, name: str, func: Callable[..., Any]) -> None:
        self.name, self.func = name, func

    def __format__(self, spec: str) -> str:
        return format(f"asset {self.name!r} ({self.func.__module__}.{self.func.__qualname__})",
                      spec)


_PLAIN_ONLY = inspect.CO_VARARGS | inspect.CO_VARKEYWORDS


def _first_line(doc: str) -> str | None:
    """The first non-blank line of a docstring, stripped (what ``inspect.cleandoc``
    puts first); None for a blank docstring."""
    return next((line.strip() for line in doc.splitlines() if line.strip()), None)


def _parameters(func: Callable[..., Any], where: _Where) -> tuple[str, ...]:
    """The names of ``func``'s parameters, each a plain named one. A plain function's
    come from its code object; anything else (a wrapper, a set ``__signature__``) is
    read by :func:`inspect.signature`, as the call will see it."""
    code = getattr(func, "__code__", None)
    if (type(func) is types.FunctionType and code is not None and not code.co_posonlyargcount
            and not code.co_flags & _PLAIN_ONLY and not hasattr(func, "__wrapped__")
            and not hasattr(func, "__signature__")):
        return code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
    params = inspect.signature(func).parameters
    for p in params.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            raise DefinitionError(
                f"{where}: parameter {p.name!r} must be a plain named parameter; "
                "upstream values are passed by name")
    return tuple(params)


def _check_reads(reads: Sequence[str | os.PathLike[str]] | None, where: _Where
                 ) -> tuple[str, ...] | None:
    """``reads`` as path strings, each a non-empty path (None: not declared)."""
    if reads is None:
        return None
    if isinstance(reads, (str, os.PathLike)):
        raise DefinitionError(f"{where}: reads must be a list of paths, not one path; "
                              f"write reads=[{os.fspath(reads)!r}]")
    paths = []
    for path in reads:
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise DefinitionError(f"{where}: reads takes file, folder or glob paths "
                                  f"(strings), got {path!r}")
        paths.append(os.fspath(path))
    return tuple(paths)


def _defining_folder(func: Callable[..., Any]) -> str:
    """The folder of the file defining ``func`` (the current one for code typed in)."""
    filename = func.__code__.co_filename
    if filename.startswith("<") or not os.path.isfile(filename):
        return os.getcwd()
    return os.path.dirname(os.path.abspath(filename))


def _check_name(asset_name: object, func: Callable[..., Any]) -> None:
    """Refuse a name that is no identifier, is reserved or is too long for the store (the
    message is spelt out only then)."""
    if not isinstance(asset_name, str) or not asset_name.isidentifier() or keyword.iskeyword(
            asset_name):
        hint = ""
        if isinstance(asset_name, str):
            fixed = "".join(c if c.isalnum() else "_" for c in asset_name)
            hint = f"; try {fixed!r}" if fixed.isidentifier() else ""
        raise DefinitionError(f"{_named(asset_name, func)} must be a valid Python "
                              f"identifier, so that downstream parameters can name it{hint}")
    if asset_name in RESERVED_PARAMETERS:
        raise DefinitionError(
            f"{_named(asset_name, func)} is reserved: a parameter named {asset_name!r} "
            f"receives kazeflow's {asset_name} object, never an upstream value; rename the "
            f"asset (@asset(name='{asset_name}_data') or another name)")
    if len(asset_name) > MAX_NAME_LENGTH:
        raise DefinitionError(
            f"{_named(asset_name, func)[:80]}… is {len(asset_name)} characters long; the "
            f"store holds names of at most {MAX_NAME_LENGTH}: choose a shorter name "
            "(@asset(name=...))")


def _named(asset_name: object, func: Callable[..., Any]) -> str:
    return f"asset name {asset_name!r} (from {func.__module__}.{func.__qualname__})"


def _dep_name(dep: object, where: _Where) -> str:
    if isinstance(dep, Asset):
        return dep.name
    if isinstance(dep, str):
        return dep
    raise DefinitionError(f"{where}: deps items must be asset names or assets, got {dep!r}")


def collect_universe(assets: Iterable[Asset] | None) -> dict[str, Asset]:
    """The assets a flow can see: every registered asset, overlaid by ``assets`` and the
    asset objects they name as deps (explicit ones win over registered namesakes)."""
    universe = registry.snapshot()
    given: dict[str, Asset] = {}
    pending = list(assets or ())
    while pending:
        item = pending.pop()
        if not isinstance(item, Asset):
            raise DefinitionError(f"Flow(assets=...) takes assets, got {item!r}")
        seen = given.get(item.name)
        if seen is not None and seen._identity != item._identity:
            raise DuplicateAssetError(
                f"asset name {item.name!r} is given twice: by {seen.definition} and by "
                f"{item.definition}; rename one of them (@asset(name=...))",
                asset_name=item.name, definitions=[seen.definition, item.definition])
        if seen is None:
            given[item.name] = item
            pending.extend(item.dep_assets)
    universe.update(given)
    return universe
