"""Shared fixtures: a clean asset registry per test and real stores in tmp_path."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _services import require, unavailable

from kazeflow.assets import registry
from kazeflow.store import Store

POSTGRES_URL = os.environ.get("KAZEFLOW_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    """Each test defines its own assets; none leak into the next test."""
    registry.clear()
    yield
    registry.clear()


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    """A real store (SQLite file and object folder) in a temporary directory."""
    with Store(tmp_path / "store") as s:
        yield s


def _postgres_available() -> str | None:
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(POSTGRES_URL)
        with engine.connect():
            pass
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means: no server here
        return f"PostgreSQL not reachable at {POSTGRES_URL}: {type(exc).__name__}: {exc}"


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema, as a URL that uses it (skips, or fails in CI, without
    a server); dropped afterwards."""
    problem = _postgres_available()
    if problem:
        unavailable(problem)
    import sqlalchemy

    schema = f"kz_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test."""
    with postgres_schema() as url:
        yield url


#: Metadata backends of the conformance fixtures: the embedded default (the stdlib
#: sqlite3), SQLite through SQLAlchemy (a driver URL) and PostgreSQL.
BACKENDS = ["sqlite", "sqlalchemy-sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def sqlalchemy_sqlite_url(folder: Path) -> str:
    """A new SQLite file in ``folder`` that the store opens through SQLAlchemy."""
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite+pysqlite:///{folder / f'kazeflow-{uuid.uuid4().hex[:8]}.db'}"


@pytest.fixture(params=BACKENDS)
def any_metadata(request, tmp_path) -> Iterator[str | None]:
    """For scenarios in several processes: None (each store's own SQLite file) or the
    URL of a SQLite file through SQLAlchemy or of a fresh PostgreSQL schema (children
    get it as ``$KAZEFLOW_METADATA_URL``)."""
    if request.param == "sqlite":
        yield None
    elif request.param == "sqlalchemy-sqlite":
        yield sqlalchemy_sqlite_url(tmp_path / "metadata")
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture
def postgres_schemas() -> Iterator[Callable[[], str]]:
    """Each call: the URL of another fresh PostgreSQL schema (all dropped afterwards)."""
    with contextlib.ExitStack() as schemas:
        yield lambda: schemas.enter_context(postgres_schema())


@pytest.fixture(scope="module", params=BACKENDS)
def new_metadata(request, tmp_path_factory) -> Iterator[Callable[[], str | None]]:
    """Module scope, for scenarios shared by several tests: each call gives what
    :func:`any_metadata` gives, a fresh database each time (dropped at the module's end)."""
    with contextlib.ExitStack() as schemas:
        def new() -> str | None:
            if request.param == "sqlite":
                return None
            if request.param == "sqlalchemy-sqlite":
                return sqlalchemy_sqlite_url(tmp_path_factory.mktemp("metadata"))
            return schemas.enter_context(postgres_schema())
        yield new


@pytest.fixture(params=BACKENDS)
def any_store(request, tmp_path) -> Iterator[Store]:
    """The same scenario against the embedded SQLite default, SQLite through SQLAlchemy
    and PostgreSQL metadata."""
    if request.param == "sqlite":
        url = None
    elif request.param == "sqlalchemy-sqlite":
        url = sqlalchemy_sqlite_url(tmp_path / "metadata")
    else:
        url = request.getfixturevalue("postgres_url")
    with Store(tmp_path / "store", metadata=url) as s:
        yield s


# ---------------------------------------------------------------- S3 on loopback (moto)

@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3 API on loopback: moto's server, started once; the AWS environment variables
    point every client (child processes too) at it while the session lasts."""
    require("s3fs", "s3")
    require("moto.server", "test")
    import logging
    import socket

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    values = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
              "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    try:
        with pytest.MonkeyPatch.context() as environment:
            for name, value in values.items():
                environment.setenv(name, value)
            yield endpoint
    finally:
        server.stop()


@pytest.fixture
def s3_url(s3_endpoint: str) -> str:
    """A fresh bucket: ``s3://<bucket>/kazeflow``."""
    import s3fs

    bucket = f"kz-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(use_listings_cache=False).mkdir(bucket)
    return f"s3://{bucket}/kazeflow"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def objects_location(request, tmp_path) -> str:
    """Where a test's objects live: a local folder, or a bucket on the S3 API."""
    if request.param == "local":
        return str(tmp_path / "objects-elsewhere")
    return request.getfixturevalue("s3_url")
