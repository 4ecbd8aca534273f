"""Options shared by the ``kazeflow`` commands, and the flow a TARGET defines.

Shared decorators keep every command's options spelled and documented the same way
(``--store``, ``--json``, ``--config``, ``-s``); the global options reach commands as
:class:`CliOptions` in ``ctx.obj``.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kazeflow.assets import registry
from kazeflow.cli import _format as fmt
from kazeflow.cli._input import InputError, import_target
from kazeflow.cli._log import TerminalLog

if TYPE_CHECKING:
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
    """``--store PATH``, ``--metadata-url URL`` and ``--objects-url URL``; the command
    receives ``store: Store``. With ``create=False`` (commands that only read a store) a
    missing store is an error.
    """
    def decorate(fn: F) -> F:
        @click.option("--store", "store_path", metavar="PATH",
                      help="Store folder (default: $KAZEFLOW_HOME or ./.kazeflow).")
        @click.option("--metadata-url", metavar="URL",
                      help="SQLAlchemy URL of the metadata database (default: "
                           "$KAZEFLOW_METADATA_URL or SQLite in the store folder).")
        @click.option("--objects-url", metavar="URL",
                      help="Where objects live: a folder or an fsspec URL such as "
                           "s3://bucket/prefix (default: $KAZEFLOW_OBJECTS_URL or the "
                           "store folder's objects/).")
        @functools.wraps(fn)
        def wrapper(*args: Any, store_path: str | None, metadata_url: str | None,
                    objects_url: str | None, **kwargs: Any) -> Any:
            from kazeflow.store import Store  # the command runs: load the store

            with Store(store_path, metadata=metadata_url, objects=objects_url,
                       create=create) as store:
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


def plan_flow(target: str, selection: Sequence[str], store: Store,
              reading: bool = False) -> Flow:
    """Import TARGET and plan ``selection`` (or all its assets) on ``store``.

    ``file.py:name`` or ``pkg.module:name`` takes the :class:`Flow` object ``name`` of the
    module, with its selection, config and store (``--store`` overrides its store). A
    store given by neither ``--store`` nor ``$KAZEFLOW_HOME`` is ``./.kazeflow`` if that
    exists, else the TARGET's folder's ``.kazeflow`` if that exists, else ``./.kazeflow``.
    ``reading`` commands create no store: when there is none they say where they looked.
    """
    from kazeflow.flow import Flow
    from kazeflow.store import DEFAULT_DIR, ENV_HOME, ENV_METADATA_URL, ENV_OBJECTS_URL, Store

    module_target, flow_name = split_target(target)
    module = import_target(module_target)
    params = click.get_current_context().params
    explicit = bool(params.get("store_path") or params.get("metadata_url")
                    or params.get("objects_url") or os.environ.get(ENV_HOME)
                    or os.environ.get(ENV_METADATA_URL) or os.environ.get(ENV_OBJECTS_URL))
    looked = [store.root]
    if not explicit and not store.exists():
        beside = Path(getattr(sys.modules[module], "__file__", None) or ".").absolute() \
            .parent / DEFAULT_DIR
        if beside != store.root:
            looked.append(beside)
            if (found := Store(beside)).exists():
                store = found
    if flow_name is not None:
        flow = _flow_object(target, module, flow_name)
        if explicit or selection:
            planned = Flow(list(selection) or None, assets=flow.assets,
                           store=store if explicit else flow.store)
            planned.config = {name: settings for name, settings in flow.config.items()
                              if name in planned.asset_names}
            planned.track_libraries = flow.track_libraries
            flow = planned
    else:
        if not registry.snapshot():
            raise InputError(f"TARGET {target!r} (module {module!r}) defines no assets; "
                             "decorate functions with @asset")
        flow = Flow(list(selection) or None, store=store)
    if reading and not flow.store.exists():
        where = " nor ".join(str(p) for p in dict.fromkeys(
            looked if flow_name is None or explicit else [flow.store.root]))
        click.echo(f"note: no kazeflow store at {where} yet: every asset is missing; run "
                   f"the flow, or point at a store with --store PATH or ${ENV_HOME}",
                   err=True)
    return flow


def split_target(target: str) -> tuple[str, str | None]:
    """``"flows.py:flow"`` → ``("flows.py", "flow")``; a TARGET without ``:name`` → None."""
    head, colon, name = target.rpartition(":")
    if colon and head and name.isidentifier():
        return head, name
    return target, None


def _flow_object(target: str, module: str, name: str) -> Flow:
    from kazeflow.flow import Flow

    flow = getattr(sys.modules[module], name, None)
    if not isinstance(flow, Flow):
        found = "nothing" if flow is None else f"a {type(flow).__name__}"
        flows = [n for n, v in vars(sys.modules[module]).items() if isinstance(v, Flow)]
        hint = f"; its Flow objects: {', '.join(flows)}" if flows else \
            "; define one, e.g. flow = Flow([...], config={...})"
        raise InputError(f"TARGET {target!r}: {name!r} in module {module!r} is {found}, "
                         f"not a Flow{hint}")
    return flow


def echo_json(value: Any) -> None:
    click.echo(fmt.to_json(value))
