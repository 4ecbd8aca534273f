"""Bring a metadata database to the schema head with the shipped Alembic revisions.

The fast path reads the current revision and returns when it is head, without importing
Alembic. The slow path serialises upgraders: a process-wide lock (Alembic's context is
global to the process) and a database lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
``pg_advisory_xact_lock``), then re-reads the revision and upgrades.
"""

from __future__ import annotations

import threading
import os

from sqlalchemy import Connection, Engine, inspect, text

from kazeflow import migrations
from kazeflow.errors import SchemaVersionError

#: Revisions shipped in migrations/versions, oldest first (a test checks them).
REVISIONS = ("0001",)
HEAD = REVISIONS[-1]

_PROCESS_LOCK = threading.Lock()
_PG_LOCK_KEY = 0x6B617A65  # "kaze"


def current_revision(conn: Connection) -> str | None:
    """The database's Alembic revision, or None for an empty database."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def ensure_schema(engine: Engine) -> None:
    """Upgrade ``engine``'s database to :data:`HEAD`.

    Raises:
        SchemaVersionError: the database is at a revision this kazeflow does not know.
    """
    with engine.connect() as conn:
        revision = current_revision(conn)
    _check_known(revision, engine)
    if revision == HEAD:
        return
    with _PROCESS_LOCK, engine.connect() as conn:
        conn = conn.execution_options(kazeflow_begin="IMMEDIATE")
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            revision = current_revision(conn)
            _check_known(revision, engine)
            if revision != HEAD:
                _upgrade(conn)


def _check_known(revision: str | None, engine: Engine) -> None:
    if revision is not None and revision not in REVISIONS:
        raise SchemaVersionError(
            f"the metadata database {engine.url.render_as_string(hide_password=True)} is at "
            f"schema revision {revision!r}, which this kazeflow does not know (its newest is "
            f"{HEAD!r}); it was written by a newer kazeflow: upgrade kazeflow "
            "(pip install -U kazeflow)", path=str(engine.url))


def alembic_config(connection: Connection | None = None):  # -> alembic.config.Config
    """An Alembic config for the shipped revisions, bound to ``connection`` if given."""
    from alembic.config import Config as AlembicConfig  # heavy: only when migrating

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", os.path.dirname(migrations.__file__))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade(conn: Connection) -> None:
    from alembic import command

    command.upgrade(alembic_config(conn), "head")
