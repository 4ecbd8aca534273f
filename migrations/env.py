"""Alembic environment: runs on the connection kazeflow passes in, or on a URL.

Never imports kazeflow, so that old revisions survive refactors of the package.

- The library passes ``config.attributes["connection"]`` (already inside the transaction
  that holds the upgrade lock) and, for comparisons, ``config.attributes["target_metadata"]``.
- Developers use the stock ``alembic`` command from the repository root (``[tool.alembic]``
  in pyproject.toml), naming the database and, for autogenerate or ``check``, the models::

      alembic -x url=sqlite:///.kazeflow/kazeflow.db upgrade head
      alembic -x url=sqlite:///dev.db -x metadata=kazeflow.store._models:metadata check
      alembic -x url=sqlite:///dev.db -x metadata=kazeflow.store._models:metadata \\
          revision --autogenerate --rev-id 0002 -m "what changed"
"""

from __future__ import annotations

import importlib
from typing import Any

from alembic import context
from sqlalchemy import Connection, create_engine

DEFAULT_URL = "sqlite:///.kazeflow/kazeflow.db"

config = context.config
x_args = context.get_x_argument(as_dictionary=True)


def load_metadata(spec: str | None) -> Any:
    """The MetaData named ``module:attribute`` by ``-x metadata=...`` (None if not given)."""
    if not spec:
        return None
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute or "metadata")


target_metadata = config.attributes.get("target_metadata") or load_metadata(
    x_args.get("metadata"))
url = x_args.get("url") or config.get_main_option("sqlalchemy.url") or DEFAULT_URL


def run_online(connection: Connection) -> None:
    """Apply the revisions on ``connection`` (batch mode on SQLite, for ALTERs)."""
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    """Print the SQL for ``alembic upgrade --sql`` instead of running it."""
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif config.attributes.get("connection") is not None:
    run_online(config.attributes["connection"])
else:
    engine = create_engine(url)
    with engine.connect() as conn:
        run_online(conn)
    engine.dispose()
