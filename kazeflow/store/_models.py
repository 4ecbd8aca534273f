"""The metadata schema as SQLAlchemy Core tables (the Alembic revisions must agree)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from kazeflow.assets import MAX_NAME_LENGTH

metadata = MetaData()

runs = Table(
    "runs", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("pid", Integer),
    Column("hostname", String(255)),
    Column("selection", Text),  # JSON list of planned asset names
    Column("n_materialized", Integer, nullable=False, server_default="0"),
    Column("n_reused", Integer, nullable=False, server_default="0"),
    Column("n_failed", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    # "<boot id>:<start in clock ticks since boot>" of the run's process: tells a live
    # run from a reused pid without the wall clock
    Column("process_start", String(64)),
    Column("folder_id", String(32)),  # the store folder whose objects the run wrote
    Index("ix_runs_started_at", "started_at"),
)

materializations = Table(
    "materializations", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False),
    Column("asset_name", String(MAX_NAME_LENGTH), nullable=False),
    Column("cache_key", String(64), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("config_hash", String(64), nullable=False),
    Column("config", Text, nullable=False),  # canonical JSON of the effective config
    Column("upstream_versions", Text, nullable=False),  # JSON {asset_name: data_version}
    Column("data_version", String(64)),
    Column("size", BigInteger),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float, nullable=False),
    Column("duration", Float, nullable=False),
    Column("status", String(16), nullable=False),  # materialized | failed
    Column("forced", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    Column("user_metadata", Text),  # JSON
    Column("libraries", Text),  # JSON {distribution: version} its code imports (0003)
    Index("ix_materializations_cache_key", "cache_key", "status"),
    Index("ix_materializations_asset_name", "asset_name", "status", "id"),
    Index("ix_materializations_run_id", "run_id"),
    Index("ix_materializations_data_version", "data_version"),
)

objects = Table(
    "objects", metadata,
    Column("data_version", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
)

code_sources = Table(
    "code_sources", metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("components", Text, nullable=False),  # JSON {component: normalised text}
    Column("created_at", Float, nullable=False),
)

# Pins of live runs when runs coordinate through the database (PostgreSQL; 0004): no
# foreign key, a pin is written before its run's row may be visible to gc's reader.
run_pins = Table(
    "run_pins", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("data_version", String(64), primary_key=True),
)
