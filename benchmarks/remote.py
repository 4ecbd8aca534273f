"""A shared store against the local default: dag-N cold and warm runs and a big array,
with PostgreSQL metadata and S3 objects (moto's server on loopback), side by side with
the same workloads on a local store in the same run, printed as ratios.

Run from a checkout (needs the [test] extra: s3fs, moto, psycopg)::

    python benchmarks/remote.py                      # dag-1000, a 256 MiB array
    python benchmarks/remote.py --size 200 --array-mib 32

PostgreSQL is ``$KAZEFLOW_TEST_POSTGRES_URL`` (default the local server's ``test``
database), a fresh schema dropped at the end; without a server the shared store keeps
SQLite metadata and says so. moto on loopback measures kazeflow's requests, not a real
network: against AWS each request costs a round trip more. This is a benchmark, not a
test: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _bigarray  # noqa: E402
import _dag  # noqa: E402
from _common import Row, best_of  # noqa: E402
from bench import format_table  # noqa: E402

from kazeflow import Store  # noqa: E402

POSTGRES_URL = os.environ.get("KAZEFLOW_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def s3_on_loopback() -> Iterator[str]:
    """moto's S3 server on a free loopback port, a fresh bucket: its URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
                      AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1")
    try:
        import s3fs

        bucket = f"kzbench-{uuid.uuid4().hex[:8]}"
        s3fs.S3FileSystem().mkdir(bucket)
        yield f"s3://{bucket}"
    finally:
        server.stop()


@contextlib.contextmanager
def postgres_schema() -> Iterator[str | None]:
    """A fresh schema's URL, or None when no server answers."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(POSTGRES_URL)
    schema = f"kzbench_{uuid.uuid4().hex[:8]}"
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except Exception as exc:  # no server here: the row says so
        print(f"PostgreSQL not reachable ({type(exc).__name__}); shared store keeps SQLite",
              file=sys.stderr)
        yield None
        return
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


def dag_rows(size: int, workdir: Path, shared: dict[str, str | None],
             repeats: int) -> list[Row]:
    """A cold run (once: a shared store is not new again), then the best warm run."""
    dag = _dag.load_dag(size, workdir)
    figures = {}
    for kind in ("local", "shared"):
        store = Store(workdir / f"{kind}-dag", **(shared if kind == "shared" else {}))
        figures[kind, "cold"] = _dag.timed_run(dag, store)[0]  # type: ignore[arg-type]
        figures[kind, "warm"] = best_of(
            repeats, lambda s=store: _dag.timed_run(dag, s)[0])  # type: ignore[misc]
    return [Row(f"dag-{size} {phase}, PostgreSQL + S3", figures["shared", phase],
                baseline=figures["local", phase], note="baseline: the local default store")
            for phase in ("cold", "warm")]


def array_rows(mib: int, workdir: Path, shared: dict[str, str | None]) -> list[Row]:
    module = _bigarray.load_module(workdir)
    module.ARRAYS["big"] = _bigarray.make_array(mib)
    figures = {}
    for kind in ("local", "shared"):
        options = shared if kind == "shared" else {}
        store = Store(workdir / f"{kind}-array", **options)
        figures[kind, "cold"] = _bigarray.run_total(store)[0]
        figures[kind, "read"] = _bigarray.run_total(store, read=True)[0]
    return [Row(f"big-array {mib} MiB {what}, PostgreSQL + S3", figures["shared", phase],
                baseline=figures["local", phase], note="baseline: the local default store")
            for phase, what in (("cold", "cold run"), ("read", "warm run + read"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000, help="assets in the dag")
    parser.add_argument("--array-mib", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3, help="warm runs (best counts)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kazeflow-remote-"))
    with s3_on_loopback() as bucket, postgres_schema() as metadata:
        shared = {"objects": f"{bucket}/kazeflow", "metadata": metadata}
        rows = dag_rows(args.size, workdir, shared, args.repeats)
        rows += array_rows(args.array_mib, workdir, shared)
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
