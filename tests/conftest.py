"""Shared fixtures: a clean asset registry per test and real stores in tmp_path."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from kazeflow.assets import registry
from kazeflow.store import Store

#: CI sets this so that tests needing PostgreSQL fail instead of skipping.
REQUIRE_SERVICES = os.environ.get("KAZEFLOW_REQUIRE_SERVICES") == "1"
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


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test (skips, or fails in CI, without a server)."""
    problem = _postgres_available()
    if problem:
        if REQUIRE_SERVICES:
            pytest.fail(problem + " (KAZEFLOW_REQUIRE_SERVICES=1)")
        pytest.skip(problem)
    import sqlalchemy

    schema = f"kz_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_store(request, tmp_path) -> Iterator[Store]:
    """The same scenario against SQLite and PostgreSQL metadata."""
    if request.param == "sqlite":
        url = None
    else:
        url = request.getfixturevalue("postgres_url")
    with Store(tmp_path / "store", metadata=url) as s:
        yield s
