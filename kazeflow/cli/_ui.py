"""``kazeflow ui``: serve the local page of :mod:`kazeflow.ui` for a TARGET."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kazeflow.cli._input import read_config
from kazeflow.cli._options import (
    config_option,
    plan_flow,
    select_option,
    store_option,
    target_argument,
)

if TYPE_CHECKING:
    from kazeflow.flow import Flow
    from kazeflow.store import Store


@click.command()
@target_argument
@select_option
@config_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (only this machine by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on; 0 picks a free one.")
@store_option(create=False)
@click.pass_context
def ui(ctx: click.Context, target: str, selection: tuple[str, ...], config_file: str | None,
       host: str, port: int, store: Store) -> None:
    """Serve a local page over TARGET and its store until Ctrl-C.

    The asset graph coloured by state, why each asset is stale (code and config diffs),
    its history and a preview of its value, the runs with a timeline of each; a run in
    progress elsewhere shows live. Read-only: it writes nothing and creates no store.
    Edits of TARGET's code show on the next refresh.
    """
    from kazeflow.ui import FlowSource, UiServer, Views

    config = read_config(config_file)

    def plan() -> Flow:
        with ctx:  # plan_flow reads the command's options from the current context
            return plan_flow(target, selection, store)

    source = FlowSource(plan)
    found = source.flow().store
    found.check_exists()  # read-only: never creates one
    server = UiServer(Views(source, config, target), host, port)
    click.echo(f"kazeflow ui: serving {target} (store {found.root}) at {server.url}; "
               "Ctrl-C stops it")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
