"""``kazeflow db current|upgrade``: the metadata database's schema revision.

SQLAlchemy and the revisions are imported when one of these runs, not when the command
line starts (``kazeflow --help`` never loads them).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from kazeflow.cli._input import InputError
from kazeflow.cli._options import store_option

if TYPE_CHECKING:
    from kazeflow.store import Store


@click.group()
def db() -> None:
    """Inspect or upgrade the schema of the metadata database."""


@db.command()
@store_option
def current(store: Store) -> None:
    """Print the database's schema revision and whether it is the head."""
    from sqlalchemy.engine import make_url

    from kazeflow.store._revision import HEAD, REVISIONS

    revision = _schema_revision(store)
    where = make_url(store.metadata_url).render_as_string(hide_password=True)
    if revision is None:
        click.echo(f"{where}: no schema yet (head is {HEAD}; any command creates it)")
    elif revision == HEAD:
        click.echo(f"{where}: revision {revision} (head)")
    elif revision not in REVISIONS:
        raise click.ClickException(
            f"{where}: revision {revision!r} is unknown to this kazeflow (its head is "
            f"{HEAD}): a newer kazeflow wrote it; upgrade kazeflow")
    else:
        click.echo(f"{where}: revision {revision} (head is {HEAD}; run: kazeflow db upgrade)")


@db.command()
@store_option
def upgrade(store: Store) -> None:
    """Bring the database's schema to the head revision (opening a store does it too)."""
    from kazeflow.store._revision import HEAD

    before = _schema_revision(store)
    store.metadata  # noqa: B018 - opening the store upgrades it (or refuses a newer one)
    if before == HEAD:
        click.echo(f"already at head revision {HEAD}")
    else:
        click.echo(f"upgraded from revision {before or 'none'} to {HEAD}")


def _schema_revision(store: Store) -> str | None:
    """The schema revision, read without upgrading (the library has no such call yet)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from kazeflow.store._migrate import current_revision
    from kazeflow.store._sqlalchemy import BAD_URL_ERRORS, bad_url

    try:
        url = make_url(store.metadata_url)
        if url.get_backend_name() == "sqlite" and url.database and not os.path.exists(
                url.database):
            return None
        engine = create_engine(url)
    except BAD_URL_ERRORS as exc:
        raise bad_url(store.metadata_url, exc) from None
    try:
        with engine.connect() as conn:
            return current_revision(conn)
    except SQLAlchemyError as exc:
        raise InputError(f"cannot read the schema revision of "
                         f"{url.render_as_string(hide_password=True)}: "
                         f"{getattr(exc, 'orig', None) or exc}") from exc
    finally:
        engine.dispose()
