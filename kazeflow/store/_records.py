"""Rows of the metadata database to records and back: the one mapping both database
adapters share (rows are plain tuples in the column order of ``_sql``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kazeflow.results import Materialization, Run
from kazeflow.store._liveness import observed_status


def encode(value: Any) -> str:
    """Canonical JSON, as every JSON column holds it."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def printable(text: str | None) -> str | None:
    """``text`` with NUL bytes spelt out: PostgreSQL text cannot hold them."""
    return text.replace("\x00", "\\x00") if text and "\x00" in text else text


def decode(text: str | None) -> Any:
    return {} if not text or text == "{}" else json.loads(text)


def materialization(row: Sequence[Any]) -> Materialization:
    """A record from a full row of ``materializations`` (``_sql.RECORD_COLUMNS``: the
    record's fields, in order).

    Filled in directly rather than through the frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field): a status check reads a record per planned asset.
    """
    (id_, run_id, asset_name, cache_key, code_hash, config_hash, config, upstream_versions,
     data_version, size, started_at, ended_at, duration, status, forced, error,
     user_metadata, libraries) = row
    record = object.__new__(Materialization)
    object.__setattr__(record, "__dict__", {
        "id": id_, "run_id": run_id, "asset_name": asset_name, "cache_key": cache_key,
        "code_hash": code_hash, "config_hash": config_hash, "config": decode(config),
        "upstream_versions": decode(upstream_versions), "data_version": data_version,
        "size": size, "started_at": started_at, "ended_at": ended_at,
        "duration": duration, "status": status, "forced": bool(forced), "error": error,
        "user_metadata": decode(user_metadata),
        "libraries": decode(libraries) if libraries else {}})
    return record


def run(row: Sequence[Any]) -> Run:
    """A run from a full row of ``runs`` (``_sql.RUN_COLUMNS``); a dead process's
    ``running`` run is ``abandoned``."""
    (run_id, status, started_at, ended_at, pid, hostname, selection, n_materialized,
     n_reused, n_failed, error, process_start, _folder_id) = row
    return Run(run_id=run_id,
               status=observed_status(status, pid, hostname, started_at, process_start),
               started_at=started_at, ended_at=ended_at, pid=pid, hostname=hostname,
               selection=tuple(json.loads(selection or "[]")),
               n_materialized=n_materialized, n_reused=n_reused, n_failed=n_failed,
               error=error)


def record_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Materialization rows as the engine gives them, with their JSON columns encoded."""
    return [{**row, "config": encode(row["config"]), "error": printable(row["error"]),
             "upstream_versions": encode(row["upstream_versions"]),
             "user_metadata": encode(row["user_metadata"]) if row.get("user_metadata")
             else None,
             "libraries": encode(row["libraries"]) if row.get("libraries") else None}
            for row in rows]


def object_rows(new_objects: Iterable[tuple[str, int]], now: float) -> list[dict[str, Any]]:
    return [{"data_version": dv, "size": size, "created_at": now}
            for dv, size in dict(new_objects).items()]


def code_rows(code: Mapping[str, Mapping[str, str]] | None, now: float
              ) -> list[dict[str, Any]]:
    return [{"code_hash": h, "components": encode(dict(c)), "created_at": now}
            for h, c in (code or {}).items()]
