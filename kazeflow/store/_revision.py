"""The schema revision this kazeflow works with, known without importing Alembic.

The revisions themselves live in ``migrations/versions`` and Alembic alone applies them
(``_migrate``); this module only names them, so that opening a store whose schema is
current needs neither Alembic nor SQLAlchemy. A test checks that :data:`HEAD` is the head
of Alembic's script directory.
"""

from __future__ import annotations

from kazeflow.errors import SchemaVersionError

#: Revisions shipped in migrations/versions, oldest first (a test checks them).
REVISIONS = ("0001", "0002", "0003", "0004")
HEAD = REVISIONS[-1]
#: The database's revision (Alembic's own table; no row, or no table, before the first).
SELECT_REVISION = "SELECT version_num FROM alembic_version"


def check_known(revision: str | None, database: str) -> None:
    """Refuse a ``revision`` this kazeflow does not know (a newer kazeflow wrote it).

    Args:
        revision: the database's revision (None: no schema yet, which is fine).
        database: the database as shown to users (URL with its password hidden).

    Raises:
        SchemaVersionError: naming the database, its revision and the library's head.
    """
    if revision is not None and revision not in REVISIONS:
        raise SchemaVersionError(
            f"the metadata database {database} is at schema revision "
            f"{revision!r}, which this kazeflow does not know (its newest is {HEAD!r}): "
            "a newer kazeflow wrote it; upgrade kazeflow (pip install -U kazeflow) or "
            "use another store", path=database)
