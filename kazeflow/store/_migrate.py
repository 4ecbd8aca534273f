"""Bring a metadata database to the schema head with the shipped Alembic revisions.

This is the only way a schema is created or changed, whichever adapter opened the
database (``_database``): the embedded default reads its revision with the stdlib
``sqlite3`` and comes here, on an engine of its own, only when that is not the head
(``_revision.HEAD``). Here too the fast path reads the current revision with one SELECT
and returns when it is head, without importing Alembic. The slow path serialises
upgraders: a process-wide lock (Alembic's context is global to the process) and a
database lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``pg_advisory_xact_lock``), then
re-reads the revision and upgrades inside that same transaction, so exactly one opener
creates the schema.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from kazeflow import migrations  # type: ignore[attr-defined]  # mapped from migrations/
from kazeflow.store._revision import HEAD, REVISIONS, SELECT_REVISION, check_known

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

#: Folder of env.py, script.py.mako and versions/ (the ``kazeflow.migrations`` package).
SCRIPT_LOCATION = str(Path(migrations.__file__).parent)

logger = logging.getLogger(__name__)

_PROCESS_LOCK = threading.Lock()
_PG_LOCK_KEY = 0x6B617A65  # "kaze"
_SELECT_REVISION = text(SELECT_REVISION)

__all__ = ["HEAD", "REVISIONS", "SCRIPT_LOCATION", "alembic_config", "current_revision",
           "ensure_schema"]


def ensure_schema(engine: Engine, before_create: Callable[[], None] | None = None) -> None:
    """Upgrade ``engine``'s database to :data:`HEAD` (a no-op when it is there).

    ``before_create`` runs, holding the locks, when the database has no schema yet and is
    about to get one; it may raise to refuse. On failure the engine's pooled connections
    are closed: its owner gives up on it.

    Raises:
        SchemaVersionError: the database is at a revision this kazeflow does not know;
            it is left untouched.
        sqlalchemy.exc.DBAPIError: the database cannot be read (the caller wraps it).
    """
    try:
        revision = _read_revision_fast(engine)
        if revision == HEAD:
            return
        _check_known(revision, engine)
        _upgrade_locked(engine, before_create)
    except BaseException:
        engine.dispose()
        raise


def current_revision(conn: Connection) -> str | None:
    """The database's Alembic revision, or None for an empty database."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(_SELECT_REVISION).scalar()


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    """An Alembic config for the shipped revisions, bound to ``connection`` if given."""
    from alembic.config import Config  # heavy: imported only when migrating

    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _read_revision_fast(engine: Engine) -> str | None:
    """The revision from one SELECT; None when there is none yet (or it cannot be read).

    None sends the caller to the slow path, which re-reads carefully under the locks and
    raises any real error.
    """
    with engine.connect() as conn:
        try:
            return conn.execute(_SELECT_REVISION).scalar()
        except (OperationalError, ProgrammingError):  # no alembic_version table yet
            return None


def _upgrade_locked(engine: Engine, before_create: Callable[[], None] | None) -> None:
    """Re-read the revision and upgrade, holding the process and database locks."""
    with _PROCESS_LOCK, engine.connect() as conn:
        conn.execution_options(kazeflow_begin="IMMEDIATE")  # SQLite: lock the file now
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            revision = current_revision(conn)
            _check_known(revision, engine)
            if revision is None and before_create is not None:
                before_create()
            if revision != HEAD:
                _log_upgrade(engine, revision)
                _run_upgrade(conn)


def _run_upgrade(conn: Connection) -> None:
    from alembic import command

    command.upgrade(alembic_config(conn), "head")


def _log_upgrade(engine: Engine, revision: str | None) -> None:
    if revision is None:
        logger.info("creating the metadata schema (revision %s) in %s", HEAD, _describe(engine))
    else:
        logger.info("upgrading the metadata schema of %s from revision %s to %s",
                    _describe(engine), revision, HEAD)


def _describe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _check_known(revision: str | None, engine: Engine) -> None:
    check_known(revision, _describe(engine))
