"""What the command line reads from the user: a TARGET that registers assets, a config file.

Both raise :class:`InputError` (one clear line, chained to the cause) instead of leaking
an import or parse traceback; the CLI's error boundary prints it.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from kazeflow.errors import KazeflowError


class InputError(KazeflowError):
    """A TARGET that cannot be imported or a config file that cannot be read."""


def import_target(target: str) -> str:
    """Import ``target`` (a module path ``pkg.mod`` or a file ``path/flow.py``).

    Importing it registers its assets. A file is imported under its stem as module name,
    with its folder put first on ``sys.path`` so that it can import its siblings; a module
    path is resolved from the current folder first, like ``python -m``.

    Returns:
        The name of the imported module.

    Raises:
        InputError: no such file or module, or importing it failed.
        KazeflowError: an asset in it is declared wrongly (passed through as is).
    """
    if target.endswith(".py") or os.sep in target or "/" in target or Path(target).is_file():
        return _import_file(Path(target))
    if not all(part.isidentifier() for part in target.split(".")):
        raise InputError(f"TARGET {target!r} is neither a Python file nor a module path "
                         "like 'pkg.flows'")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name and (target == exc.name or target.startswith(exc.name + ".")):
            raise InputError(f"cannot import TARGET {target!r}: no module named {exc.name!r} "
                             f"(looked in {cwd} and sys.path); give a file path or run "
                             "from the folder that contains the package") from exc
        raise _import_failed(target, exc) from exc
    except KazeflowError:
        raise
    except Exception as exc:
        raise _import_failed(target, exc) from exc
    return target


def _import_file(path: Path) -> str:
    path = path.expanduser().absolute()
    if not path.is_file():
        raise InputError(f"cannot load TARGET {str(path)!r}: no such file")
    name = path.stem if path.stem.isidentifier() else "_kazeflow_target"
    loaded = sys.modules.get(name)
    if loaded is not None:
        if Path(getattr(loaded, "__file__", "") or "").absolute() == path:
            return name
        raise InputError(f"cannot load TARGET {str(path)!r}: its name {name!r} is already "
                         f"taken by the module {getattr(loaded, '__file__', name)}; rename "
                         "the file")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"cannot load TARGET {str(path)!r}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    sys.modules[name] = module  # dataclasses and pickling look their module up here
    try:
        spec.loader.exec_module(module)
    except KazeflowError:
        del sys.modules[name]
        raise
    except Exception as exc:
        del sys.modules[name]
        raise _import_failed(str(path), exc) from exc
    return name


def _import_failed(target: str, exc: BaseException) -> InputError:
    where = ""
    tb = exc.__traceback__
    while tb is not None:  # the innermost frame in user code says where it broke
        if not tb.tb_frame.f_code.co_filename.startswith("<frozen"):
            where = f" ({tb.tb_frame.f_code.co_filename}:{tb.tb_lineno})"
        tb = tb.tb_next
    if isinstance(exc, SyntaxError):
        where = f" ({exc.filename}:{exc.lineno})"
    return InputError(f"importing TARGET {target!r} failed: {type(exc).__name__}: "
                      f"{exc}{where}")


def read_config(path: str | None) -> dict[str, Any] | None:
    """The config mapping (asset name → settings) in a JSON or TOML file.

    TOML is chosen by the ``.toml`` suffix; anything else is read as JSON.

    Raises:
        InputError: the file cannot be read or parsed, or is not a table of tables.
    """
    if path is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read config file {path!r}: {exc.strerror or exc}") from exc
    if Path(path).suffix.lower() == ".toml":
        config = _parse_toml(path, data)
    else:
        try:
            config = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"config file {path!r} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict) or not all(isinstance(v, dict) for v in config.values()):
        raise InputError(f"config file {path!r} must map asset names to tables of settings, "
                         'e.g. {"processed_data": {"multiplier": 2}}')
    return config


def _parse_toml(path: str, data: bytes) -> dict[str, Any]:
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ModuleNotFoundError:
            raise InputError(f"config file {path!r} is TOML, which needs Python 3.11+ or "
                             "the tomli package (pip install tomli); or give a .json "
                             "file") from None
    try:
        return tomllib.loads(data.decode("utf-8"))  # type: ignore[no-any-return]
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"config file {path!r} is not valid TOML: {exc}") from exc
