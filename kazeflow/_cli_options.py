"""Options shared by the ``kazeflow`` commands, and the flow a TARGET defines.

Shared decorators keep every command's options spelled and documented the same way
(``--store``, ``--json``, ``--config``, ``-s``); the global options reach commands as
:class:`CliOptions` in ``ctx.obj``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from kazeflow import _cli_format as fmt
from kazeflow._cli_input import InputError, import_target
from kazeflow._cli_log import TerminalLog
from kazeflow.assets import registry
from kazeflow.flow import Flow
from kazeflow.store import Store

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliOptions:
    """Global options, shared with every command through ``ctx.obj``."""

    verbose: bool
    debug: bool
    log: TerminalLog


def store_option(fn: F | None = None, *, create: bool = True) -> Any:
    """``--store PATH`` and ``--database-url URL``; the command receives ``store: Store``.
    With ``create=False`` (commands that only read a store) a missing store is an error.
    """
    def decorate(fn: F) -> F:
        @click.option("--store", "store_path", metavar="PATH",
                      help="Store folder (default: $KAZEFLOW_HOME or ./.kazeflow).")
        @click.option("--database-url", metavar="URL",
                      help="SQLAlchemy URL of the metadata database (default: "
                           "$KAZEFLOW_DATABASE_URL or SQLite in the store folder).")
        @functools.wraps(fn)
        def wrapper(*args: Any, store_path: str | None, database_url: str | None,
                    **kwargs: Any) -> Any:
            with Store(store_path, database_url=database_url, create=create) as store:
                return fn(*args, store=store, **kwargs)
        return wrapper  # type: ignore[return-value]
    return decorate(fn) if fn is not None else decorate


def json_option(fn: F) -> F:
    """``--json``: machine-readable output; the command receives ``as_json: bool``."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON instead of a table (for scripts).")(fn)


def target_argument(fn: F) -> F:
    """The TARGET argument: a module path or a Python file that registers assets."""
    return click.argument("target", metavar="TARGET")(fn)


def config_option(fn: F) -> F:
    """``--config FILE``: asset name → settings, in JSON or TOML."""
    return click.option("-c", "--config", "config_file", metavar="FILE",
                        help="Config file (JSON, or TOML by its .toml suffix) mapping asset "
                             "names to their settings.")(fn)


def select_option(fn: F) -> F:
    """``-s ASSET`` (repeatable): the assets to plan, with their upstreams."""
    return click.option("-s", "--select", "selection", metavar="ASSET", multiple=True,
                        help="Only this asset and its upstreams (repeatable; default: "
                             "every asset TARGET registers).")(fn)


def plan_flow(target: str, selection: Sequence[str], store: Store) -> Flow:
    """Import TARGET and plan ``selection`` (or all its assets) on ``store``."""
    module = import_target(target)
    if not registry.snapshot():
        raise InputError(f"TARGET {target!r} (module {module!r}) defines no assets; "
                         "decorate functions with @asset")
    return Flow(list(selection) or None, store=store)


def echo_json(value: Any) -> None:
    click.echo(fmt.to_json(value))
