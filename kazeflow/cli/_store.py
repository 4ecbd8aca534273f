"""Store-level commands: they need only the store, never a TARGET.

``history``, ``runs``, ``show``, ``verify``, ``gc``, and ``db current|upgrade`` from
:mod:`kazeflow.cli._db`; the ``kazeflow`` group in :mod:`kazeflow.cli` registers them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kazeflow.assets import registry
from kazeflow.cli import _format as fmt
from kazeflow.cli._db import db
from kazeflow.cli._input import InputError, import_target
from kazeflow.cli._options import echo_json, json_option, plan_flow, split_target, store_option
from kazeflow.errors import KazeflowError, ObjectNotFoundError
from kazeflow.results import FRESH, AssetStatus, Materialization

if TYPE_CHECKING:
    from kazeflow.store import Store


@click.command()
@click.argument("asset", required=False)
@click.option("-n", "--limit", type=click.IntRange(min=1), metavar="N",
              help="At most N records.")
@store_option(create=False)
@json_option
def history(asset: str | None, limit: int | None, store: Store, as_json: bool) -> None:
    """List materializations of ASSET (or of all assets), newest first.

    Failed attempts are listed too. Needs only the store, not a TARGET.
    """
    records = store.history(asset, limit)
    if as_json:
        echo_json(records)
    elif not records:
        what = f"asset {asset!r}" if asset else "any asset"
        click.echo(f"no materializations of {what} in {store.root}", err=True)
    else:
        click.echo(fmt.history_table(records))


@click.command()
@click.option("-n", "--limit", type=click.IntRange(min=1), metavar="N",
              help="At most N runs.")
@store_option(create=False)
@json_option
def runs(limit: int | None, store: Store, as_json: bool) -> None:
    """List runs with their status and counts, newest first."""
    from kazeflow.flow import Flow

    records = Flow([], store=store).runs(limit)
    if as_json:
        echo_json(records)
    else:
        click.echo(fmt.runs_table(records))


@click.command()
@click.argument("asset")
@click.option("--version", "version", metavar="V",
              help="A record id as `history` prints it, a data version, or a unique "
                   "prefix of one (default: the newest). A number is tried as an id first.")
@click.option("-t", "--target", metavar="TARGET",
              help="Import TARGET first, when the value's classes are defined there.")
@store_option(create=False)
@json_option
def show(asset: str, version: str | None, target: str | None, store: Store,
         as_json: bool) -> None:
    """Show one materialization of ASSET and a short repr of its value.

    The value is loaded and hash-verified; its classes must be importable (--target).
    With --target (a file, module or file.py:flow), says whether it is what the flow
    would produce now.
    """
    current = None
    if target is not None:
        import_target(split_target(target)[0])
    record = _materialization(store, asset, version)
    if target is not None and (split_target(target)[1] or asset in registry.snapshot()):
        status = plan_flow(target, [asset], store).status()[asset]
        current = _current(status, record)
    try:
        value = store.load(asset, record.id)
    except KazeflowError:
        raise
    except Exception as exc:  # unpickling: a class or module this process lacks
        raise InputError(f"cannot unpickle the value of {asset!r}: {type(exc).__name__}: "
                         f"{exc}; pass --target with the module or file that defines its "
                         "types") from exc
    if as_json:
        echo_json({"materialization": record, "value_repr": fmt.short_repr(value),
                   "current": None if current is None else current[0]})
        return
    click.echo("\n".join(fmt.materialization_lines(record)))
    said = current[1] if current else "unknown (give --target TARGET to compare with your code)"
    click.echo(f"{click.style('current'.ljust(16), bold=True)}{said}")
    click.echo(f"{click.style('value'.ljust(16), bold=True)}{fmt.short_repr(value)}")


def _current(status: AssetStatus, record: Materialization) -> tuple[bool, str]:
    """Whether ``record`` is what the flow would produce now, and a line saying so (or
    why not)."""
    if status.state == FRESH and status.last is not None:
        if status.last.data_version == record.data_version:
            return True, "yes: what the flow produces now"
        return False, f"no: the flow now produces record {status.last.id}"
    why = "; ".join(map(str, status.reasons))
    return False, f"no: the asset is {status.state} ({why})"


def _materialization(store: Store, asset: str, version: str | None) -> Materialization:
    """The record ``--version`` names: an id (as ``history`` prints), else a data
    version or a prefix of one."""
    if version is not None and version.isdigit():
        try:
            return store.materialization(asset, int(version))
        except ObjectNotFoundError:
            pass
    return store.materialization(asset, version)


@click.command()
@store_option(create=False)
@json_option
def verify(store: Store, as_json: bool) -> None:
    """Re-hash every stored object; exit 1 if any is missing or corrupt.

    Corrupt objects are quarantined, so the next run re-materializes their assets.
    """
    report = store.verify()
    if as_json:
        echo_json({**fmt.jsonable(report), "ok": report.ok})
    else:
        click.echo(f"checked {report.checked} objects: {len(report.corrupt)} corrupt, "
                   f"{len(report.missing)} missing, {len(report.orphaned)} orphaned")
        for dv in report.corrupt:
            click.echo(f"{fmt.styled('corrupt', 'missing')}   {dv}  (quarantined)")
        for dv, assets in report.missing.items():
            click.echo(f"{fmt.styled('missing')}   {dv}  (assets: {', '.join(assets)})")
        for dv in report.orphaned:
            click.echo(f"orphaned  {dv}  (no record refers to it; gc removes it)")
    if not report.ok:
        raise click.ClickException(
            f"{len(report.corrupt)} corrupt and {len(report.missing)} missing objects in "
            f"{store.root}; the next run re-materializes the assets that need them")


@click.command()
@click.option("--keep-last", type=click.IntRange(min=1), metavar="N",
              help="Keep the newest N records of each asset.")
@click.option("--older-than", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Delete records that ended more than SECONDS ago.")
@click.option("--dry-run", is_flag=True, help="Report what would go; delete nothing.")
@store_option(create=False)
@json_option
def gc(keep_last: int | None, older_than: float | None, dry_run: bool, store: Store,
       as_json: bool) -> None:
    """Delete old records and the objects nothing refers to any more.

    Without --keep-last or --older-than only unreferenced objects and stale temp files
    go. The newest successful record of every asset is always kept.
    """
    report = store.gc(keep_last=keep_last, older_than=older_than, dry_run=dry_run)
    if as_json:
        echo_json({**fmt.jsonable(report), "bytes_freed": report.bytes_freed})
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(f"gc {verb} {report.records_removed} records, {report.objects_removed} "
               f"objects and {report.temp_files_removed} temp files")
    click.echo(f"objects: {fmt.size(report.bytes_before)} before, "
               f"{fmt.size(report.bytes_after)} after ({fmt.size(report.bytes_freed)} "
               f"{'to free' if dry_run else 'freed'})")


#: The commands above and ``db``, in the order ``kazeflow --help`` lists them.
COMMANDS = (db, gc, history, runs, show, verify)
