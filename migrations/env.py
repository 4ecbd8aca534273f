"""Alembic environment: runs on the connection kazeflow passes in, or on a URL.

Never imports kazeflow, so that old revisions survive refactors of the package. The
library passes ``config.attributes["connection"]``; developers using the stock
``alembic`` command pass ``-x url=sqlite:///.kazeflow/kazeflow.db``.
"""

from alembic import context
from sqlalchemy import create_engine

config = context.config
target_metadata = config.attributes.get("target_metadata")


def run_migrations(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or \
        config.get_main_option("sqlalchemy.url") or "sqlite:///.kazeflow/kazeflow.db"
    engine = create_engine(url)
    with engine.begin() as conn:
        run_migrations(conn)
