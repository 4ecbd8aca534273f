"""The ``kazeflow`` command line: a thin shell over :class:`~kazeflow.flow.Flow` and
:class:`~kazeflow.store.Store`.

Commands that need assets take a TARGET (a module path ``pkg.flows`` or a file
``path/flows.py``) whose import registers them; store-level commands need only the store
(``--store``, default ``$KAZEFLOW_HOME`` or ``./.kazeflow``). One error boundary turns
every :class:`~kazeflow.errors.KazeflowError`, bad TARGET and unreadable config file into
one ``Error: ...`` line on stderr with exit code 1 (``--debug`` adds the traceback).

Example::

    kazeflow run flows.py --config config.toml
    kazeflow status flows.py
    kazeflow why flows.py report
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from kazeflow.cli import _format as fmt
from kazeflow.cli._input import InputError, read_config
from kazeflow.cli._log import configure
from kazeflow.cli._options import (
    CliOptions,
    config_option,
    echo_json,
    json_option,
    plan_flow,
    select_option,
    store_option,
    target_argument,
)
from kazeflow.cli._store import COMMANDS
from kazeflow.cli._ui import ui
from kazeflow.errors import FlowRunError, KazeflowError
from kazeflow.results import RunResult

if TYPE_CHECKING:
    from kazeflow.store import Store


class _Boundary(click.Group):
    """The one error boundary: known errors become ``Error: <message>``, exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KazeflowError as exc:  # InputError too
            message = " ".join(str(exc).splitlines())
            if ctx.params.get("debug"):
                traceback.print_exc()
            elif isinstance(exc, InputError) and exc.__cause__ is not None:
                message += " (--debug shows the traceback)"
            raise click.ClickException(message) from None


# ------------------------------------------------------------------ the group

@click.group(name="kazeflow", cls=_Boundary,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kazeflow", prog_name="kazeflow")
@click.option("-v", "--verbose", is_flag=True,
              help="Also show DEBUG messages (which asset is materialized, and why).")
@click.option("--debug", is_flag=True, help="Show the traceback of errors.")
@click.option("--color/--no-color", default=None,
              help="Force colour on or off (default: on for a terminal unless NO_COLOR "
                   "is set).")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, debug: bool, color: bool | None) -> None:
    """kazeflow: materialize assets incrementally; ask what is stale and why.

    TARGET is a module path (pkg.flows) or a file (path/to/flows.py) whose import
    registers assets, or a Flow object in one (flows.py:flow), whose selection, config
    and store are then used. Store-level commands (history, runs, show, verify, gc, db) need
    only the store: --store PATH, $KAZEFLOW_HOME, or ./.kazeflow.
    """
    if color is None and os.environ.get("NO_COLOR"):
        color = False
    ctx.color = color
    ctx.obj = CliOptions(verbose, debug, configure(verbose or debug))


def _parse_pools(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
                 ) -> dict[str, int]:
    """``("gpu=1", "db=4")`` → ``{"gpu": 1, "db": 4}``."""
    pools = {}
    for value in values:
        name, _, size = value.partition("=")
        if not name or not size.isdigit() or int(size) < 1:
            raise click.BadParameter(f"{value!r}: give NAME=SIZE with a whole number "
                                     "SIZE >= 1, e.g. --pool gpu=1", ctx, param)
        pools[name] = int(size)
    return pools


@cli.command()
@target_argument
@select_option
@config_option
@click.option("--force", is_flag=True, help="Re-execute every planned asset.")
@click.option("--force-asset", metavar="NAME", multiple=True,
              help="Re-execute this asset (repeatable); its downstream re-runs only if "
                   "its result changes.")
@click.option("--executor", type=click.Choice(["sequential", "threads", "processes"]),
              default="sequential", show_default=True,
              help="Run independent stale assets one by one, in threads or in processes.")
@click.option("--max-workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="Workers of the threads or processes executor (default: CPU count).")
@click.option("--pool", "pools", metavar="NAME=SIZE", multiple=True, callback=_parse_pools,
              help="At most SIZE assets of @asset(pool=NAME) at once (repeatable; "
                   "default 1 per pool).")
@store_option
@json_option
@click.pass_obj
def run(opts: CliOptions, target: str, selection: tuple[str, ...], config_file: str | None,
        force: bool, force_asset: tuple[str, ...], executor: str, max_workers: int | None,
        pools: dict[str, int], store: Store, as_json: bool) -> None:
    """Materialize what is stale in TARGET; reuse the rest.

    Exits 1 when an asset fails, naming it and its error (-v shows its traceback).
    """
    if force and force_asset:
        raise click.UsageError("give --force or --force-asset, not both")
    flow = plan_flow(target, selection, store)
    config = read_config(config_file)
    try:
        with opts.log.progress(flow.asset_names):
            result = flow.run(config=config, force=True if force else list(force_asset),
                              executor=executor, max_workers=max_workers, pools=pools)
    except FlowRunError as exc:
        _show_run(exc.result, flow.asset_names, as_json)
        if opts.verbose or opts.debug:
            for name, error in exc.errors.items():
                click.echo(f"traceback of asset {name!r}:\n"
                           + "".join(traceback.format_exception(error)), err=True)
        raise
    _show_run(result, flow.asset_names, as_json)


def _show_run(result: RunResult, asset_names: Sequence[str], as_json: bool) -> None:
    if as_json:
        echo_json({"run_id": result.run_id, "ok": not result.failed,
                    "materialized": result.materialized, "reused": result.reused,
                    "failed": result.failed, "skipped": result.skipped,
                    "duration": result.duration})
        return
    outcomes = {}
    for name in asset_names:
        if name in result.failed:
            outcomes[name] = ("failed", result.failed[name])
        elif name in result.skipped:
            outcomes[name] = ("not run", result.skipped[name])
        else:
            outcomes[name] = ("materialized" if name in result.materialized else "reused", "")
    click.echo(fmt.outcome_table(outcomes))


@cli.command()
@target_argument
@select_option
@config_option
@store_option
@json_option
def status(target: str, selection: tuple[str, ...], config_file: str | None, store: Store,
           as_json: bool) -> None:
    """Show each asset of TARGET: fresh, stale or missing, and why.

    Executes nothing. Give the same --config as the run you compare against.
    """
    flow = plan_flow(target, selection, store, reading=True)
    statuses = flow.status(read_config(config_file))
    if as_json:
        echo_json(list(statuses.values()))
    else:
        click.echo(fmt.status_table(statuses))


@cli.command()
@target_argument
@click.argument("asset")
@config_option
@store_option
@json_option
def why(target: str, asset: str, config_file: str | None, store: Store,
        as_json: bool) -> None:
    """Explain why ASSET of TARGET is stale, down to the root cause.

    Shows the unified diff of its code (and of every user helper that changed) since its
    last materialization, the config diff, and for each upstream that changed or is
    stale, that upstream's own explanation.
    """
    flow = plan_flow(target, [asset], store, reading=True)
    tree = fmt.explain(flow.status(read_config(config_file)), asset)
    if as_json:
        echo_json(tree)
    else:
        click.echo("\n".join(fmt.why_lines(tree)))


@cli.command()
@target_argument
@select_option
@config_option
@click.option("--format", "format_", type=click.Choice(["mermaid", "dot"]),
              default="mermaid", show_default=True, help="Mermaid flowchart or Graphviz dot.")
@store_option
def graph(target: str, selection: tuple[str, ...], config_file: str | None, format_: str,
          store: Store) -> None:
    """Print the asset graph of TARGET with each asset's state.

    Nodes are labelled fresh, stale or missing (as in `status`) and coloured by state;
    paste Mermaid into Markdown, or pipe dot into `dot -Tsvg`.
    """
    flow = plan_flow(target, selection, store, reading=True)
    statuses = flow.status(read_config(config_file))
    planned = list(flow.assets)
    click.echo(fmt.mermaid(planned, statuses) if format_ == "mermaid"
               else fmt.dot(planned, statuses))


for _command in (*COMMANDS, ui):
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``kazeflow`` console script."""
    cli.main(args=list(argv) if argv is not None else sys.argv[1:], prog_name="kazeflow")
