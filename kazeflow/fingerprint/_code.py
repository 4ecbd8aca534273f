"""Code fingerprints: the normalised source of an asset and of the user code it reaches.

The fingerprint of a function is a set of named *components*: its own source with
docstrings, comments and formatting removed (``ast.unparse`` of the docstring-free tree,
which is stable across Python patch releases), and for every user-level name it reads,
recursively:

- user functions and classes: their normalised source, decorators included (except
  kazeflow's own, such as ``@asset(...)``, whose options enter the key elsewhere);
- immutable constants (numbers, strings, bytes, None, tuples/frozensets of them): value;
- anything else (lists, dicts, objects, closure cells): the source of the statements that
  assign or build it (also ``for``/``with`` targets and ``case`` captures, in any block),
  never its current state, so mutating a module-level list does not change a hash; a
  value no statement builds (set through ``globals()``, from outside) is named by its
  type only, with a warning.

Names are followed in a function's body, its decorators and default values, its closure
cells, in class bodies, in the statements that assign a global, through
``module.attribute`` chains (also ``getattr(module, "attribute")``) and ``from module
import name`` (also relative and ``*``). Imports inside a hashed function (``import x``,
``import x as z``, ``from . import y``, ``importlib.import_module("x")``,
``__import__("x")`` with literal names) are followed as if they were at module level;
a user module they name that is not loaded yet is imported to be hashed. A module or
attribute picked by a name known only at run time (``importlib.import_module(name)``,
``getattr(module, name)``) cannot be followed: one warning per asset says where.
Library code (the standard library, site-packages except distributions installed from a
local folder, kazeflow itself; see :mod:`kazeflow.fingerprint._user`) is not followed.
Components of the asset's own module are named by qualname, others ``module:qualname``;
module metadata such as ``__name__`` is never hashed, so running a file as ``__main__``
or importing it gives the same hash.
"""

from __future__ import annotations

import functools
import linecache
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from kazeflow.fingerprint import _modules, _source, _unseen, _user
from kazeflow.fingerprint._cache import SourceCache
from kazeflow.fingerprint._hashing import KEY_FORMAT_VERSION, code_digest, tagged_digest
from kazeflow.fingerprint._modules import lent_module, needs_lent_module
from kazeflow.fingerprint._source import entry_key
from kazeflow.fingerprint._unseen import warn_computed, warn_dynamic
from kazeflow.fingerprint._walk import Collector, unwrap

#: Bump when normalisation changes; every code hash changes with it.
CODE_HASH_VERSION = 1


class CodeFingerprint(NamedTuple):
    """The code hash of an asset and the normalised texts it was computed from (a tuple:
    one is made per planned asset and run)."""

    code_hash: str
    components: Mapping[str, str]
    #: Top-level modules of the libraries (not the standard library) the code reaches.
    libraries: tuple[str, ...] = ()


def code_version_fingerprint(code_version: str) -> CodeFingerprint:
    """Fingerprint of an asset whose user pinned ``code_version``."""
    components = {"code_version": code_version}
    return CodeFingerprint(tagged_digest("kazeflow.code_version", code_version), components)


def fingerprint(fn: Callable[..., Any], cache: SourceCache | None = None,
                asset_name: str | None = None, reads_declared: bool = False
                ) -> CodeFingerprint:
    """Fingerprint ``fn`` and the user code it reaches (see the module docstring),
    reusing the analyses of unchanged functions kept in ``cache``. A warning names
    ``asset_name`` (by default the asset registered with ``fn``) if that code imports or
    reads something by a name known only at run time, or (unless ``reads_declared``:
    the asset said which files it reads) reads a module-level value computed by a call,
    which may have read a file that can change unseen."""
    collector = Collector(fn.__module__, cache)
    inner = unwrap(fn)
    if needs_lent_module(inner):
        with lent_module(inner):
            root = collector.add_function(fn)
    else:  # the common case: its module is in sys.modules
        root = collector.add_function(fn)
    if collector.dynamic:
        warn_dynamic(asset_name or _asset_name(fn), collector.dynamic)
    if collector.computed and not reads_declared:
        warn_computed(asset_name or _asset_name(fn), collector.computed)
    items = tuple(sorted(collector.components.items()))
    return CodeFingerprint(_digest(inner, root, items, cache), dict(items),
                           tuple(sorted(collector.libraries)))


def _digest(fn: Any, root: str, items: tuple[tuple[str, str], ...],
            cache: SourceCache | None) -> str:
    """The code hash of ``items``, kept in the cache entry of the root function ``fn``
    (its last components and their digest), so a new process need not hash every
    asset's components again when none changed."""
    if cache is None:
        return _code_digest(root, items)
    where = entry_key(fn)
    entry = cache.get(*where)
    hashed = (root, items)
    if entry is not None and len(entry) > 5 and entry[5][0] == hashed:
        return str(entry[5][1])
    digest = _code_digest(root, items)
    if entry is not None:
        cache.put(*where, (*entry[:5], (hashed, digest)))
    return digest


@functools.lru_cache(maxsize=16384)
def _code_digest(root: str, items: tuple[tuple[str, str], ...]) -> str:
    """The code hash of sorted components (memoised: most runs see the same ones)."""
    return code_digest(CODE_HASH_VERSION, root, items)


def clear_memory_caches() -> None:
    """Forget what this process memoised, as a new process starts (tests and benchmarks
    use it to exercise the persistent cache alone)."""
    _source.clear()
    _user.clear()
    _unseen.clear()
    _modules.clear()
    linecache.clearcache()
    _code_digest.cache_clear()


def source_cache(path: Path | None) -> SourceCache:
    """The persistent cache of function analyses at ``path`` (None: this run only).

    Its tag changes with the entries' format and with what an analysis finds (4: an
    entry keeps the code hash it last had as a root; 5: the imports in a body and the
    dynamic ones), so older entries are dropped."""
    return SourceCache(path, ("kazeflow.sources", 5, CODE_HASH_VERSION, KEY_FORMAT_VERSION,
                              sys.version_info[:2]))


def _asset_name(fn: Any) -> str:
    """The name of the registered asset whose function is ``fn`` (else its qualname)."""
    from kazeflow.assets import registry  # a cycle at import time otherwise

    found = (a.name for a in registry.snapshot().values() if a.fn is fn)
    return next(found, getattr(fn, "__qualname__", repr(fn)))


