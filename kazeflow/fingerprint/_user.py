"""Which modules are the user's code (hashed) and which are library code (not hashed).

Library code is the standard library and what is installed in site-packages, except a
distribution installed from a local path (``pip install .``, ``pip install -e .``,
``pip install dist/mine-1.0-py3-none-any.whl``, ``git+file://``): PEP 610 has pip record
that in the ``direct_url.json`` of its ``.dist-info``, with a ``file://`` URL; its files
are the user's own code wherever they live. A distribution from an index or
``--find-links`` (no ``direct_url.json``) or a remote URL stays library code. Each site-packages
folder is looked at once per process,
the first time a file in it is judged: one ``scandir`` and one ``direct_url.json`` open
per distribution (a few milliseconds for hundreds), and the ``RECORD`` of the local ones
only.

Modules that a function imports in its body may not be loaded yet when its code is
hashed (before any asset runs): :func:`user_module` imports those that are user code,
found without importing anything of a library, so that what the body reaches is hashed.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
import sys
import sysconfig
import types

from kazeflow.context import log
from kazeflow.fingerprint._source import is_kazeflow


def _roots() -> tuple[set[str], tuple[str, ...]]:
    """The site-packages folders, and every library folder (they and the stdlib)."""
    paths = sysconfig.get_paths()
    sites = {paths[k] for k in ("purelib", "platlib") if k in paths}
    sites.update(p for p in sys.path if p.rstrip(os.sep).endswith(("site-packages",
                                                                    "dist-packages")))
    others = {paths[k] for k in ("stdlib", "platstdlib") if k in paths}
    others.update(os.path.join(p, "lib") for p in (sys.base_prefix, sys.base_exec_prefix))
    site_roots = {os.path.realpath(r) + os.sep for r in sites}
    return site_roots, tuple(sorted(site_roots | {os.path.realpath(r) + os.sep
                                                   for r in others}))


_SITE_ROOTS, _LIBRARY_ROOTS = _roots()


def is_user_module(module_name: str | None) -> bool:
    """Whether code of ``module_name`` belongs to the user (and so is hashed)."""
    if not module_name or module_name in sys.builtin_module_names or is_kazeflow(module_name):
        return False
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if file is None:  # __main__ of a notebook, a module built at run time
        return module is not None or module_name == "__main__"
    return is_user_file(file)


@functools.lru_cache(maxsize=4096)
def is_user_file(file: str) -> bool:
    """Whether ``file`` is user code: outside the library folders, or installed there
    from a local path."""
    real = os.path.realpath(file)
    if not real.startswith(_LIBRARY_ROOTS):
        return True
    root = next((r for r in _SITE_ROOTS if real.startswith(r)), None)
    return root is not None and real in local_distribution_files(root)


@functools.lru_cache(maxsize=64)
def local_distribution_files(root: str) -> frozenset[str]:
    """The real paths of the files that distributions installed from a local path
    own in the site-packages folder ``root`` (see the module docstring)."""
    owned: set[str] = set()
    try:
        entries = [e.path for e in os.scandir(root) if e.name.endswith(".dist-info")]
    except OSError:
        return frozenset()
    for info in entries:
        if not _from_local_path(os.path.join(info, "direct_url.json")):
            continue
        import csv  # only here: most processes never need it

        try:
            with open(os.path.join(info, "RECORD"), newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
        except (OSError, csv.Error, UnicodeDecodeError):
            continue
        # ``root`` is a real path; a RECORD's rows are relative to it (a string join,
        # not a realpath per file: a local project may own thousands)
        owned.update(os.path.normpath(os.path.join(root, row[0])) for row in rows if row)
    log.debug("distributions installed from local paths own %d files in %s",
              len(owned), root)
    return frozenset(owned)


def _from_local_path(direct_url: str) -> bool:
    """Whether a ``direct_url.json`` says: installed from a local folder or archive."""
    try:
        with open(direct_url, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:  # installed from an index
        return False
    except (OSError, ValueError) as exc:
        log.debug("ignoring the unreadable %s: %s", direct_url, exc)
        return False
    return isinstance(data, dict) and str(data.get("url", "")).startswith("file://")


# ------------------------------------------------------------------ modules imported in bodies

def resolve(module: str | None, level: int, module_name: str) -> str | None:
    """The absolute name of ``module`` imported with ``level`` dots in ``module_name``."""
    if not level:
        return module
    package = getattr(sys.modules.get(module_name), "__package__", None)
    try:
        return importlib.util.resolve_name("." * level + (module or ""), package)
    except (ImportError, ValueError):
        return None


#: Top-level packages found to be library code when not loaded (never imported here).
_LIBRARY_PACKAGES: set[str] = set()
#: User modules that failed to import here, so their importers cannot be hashed fully.
_UNIMPORTABLE: set[str] = set()


def user_module(name: str | None) -> types.ModuleType | None:
    """The user module ``name``, imported if it is not loaded yet (a library module is
    never imported: it would not be hashed); None for library code, a module that
    cannot be found (an optional dependency) or one that fails to import (warned)."""
    if not name:
        return None
    module = sys.modules.get(name)
    if module is None:
        if not _found_in_user_code(name):
            return None
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                return None  # no such module (the body may expect that): nothing to hash
            _warn_unimportable(name, exc)
            return None
        except Exception as exc:  # any failure of the user's module: hash what we can
            _warn_unimportable(name, exc)
            return None
    return module if is_user_module(name) else None


def _found_in_user_code(name: str) -> bool:
    """Whether the not yet loaded module ``name`` would be user code, found without
    running any code but the user's own packages' ``__init__``."""
    top = name.partition(".")[0]
    if top in _LIBRARY_PACKAGES or is_kazeflow(top) or top in sys.builtin_module_names:
        return False
    if top in sys.modules:
        return is_user_module(top)
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if spec.origin and os.path.isabs(spec.origin):
        user = is_user_file(spec.origin)
    else:  # a namespace package: user code if one of its folders is
        user = any(is_user_file(os.path.join(p, "__init__.py"))
                   for p in spec.submodule_search_locations or ())
    if not user:
        _LIBRARY_PACKAGES.add(top)
    return user


def _warn_unimportable(name: str, exc: Exception) -> None:
    if name in _UNIMPORTABLE:
        return
    _UNIMPORTABLE.add(name)
    log.warning(
        "%s is imported inside a hashed function, but importing it to hash it failed "
        "(%s: %s): changing it will not re-run the assets that use it; make it importable "
        "before the run, import it at module level, or give those assets code_version=...",
        name, type(exc).__name__, exc)


def clear() -> None:
    """Forget what this process memoised (see ``_code.clear_memory_caches``)."""
    _LIBRARY_PACKAGES.clear()
    _UNIMPORTABLE.clear()
    is_user_file.cache_clear()
    local_distribution_files.cache_clear()
