"""initial schema: runs, materializations, objects, code_sources

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("pid", sa.Integer),
        sa.Column("hostname", sa.String(255)),
        sa.Column("selection", sa.Text),
        sa.Column("n_materialized", sa.Integer, nullable=False, server_default="0"),
        sa.Column("n_reused", sa.Integer, nullable=False, server_default="0"),
        sa.Column("n_failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_table(
        "materializations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("asset_name", sa.String(255), nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("upstream_versions", sa.Text, nullable=False),
        sa.Column("data_version", sa.String(64)),
        sa.Column("size", sa.BigInteger),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float, nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("forced", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("user_metadata", sa.Text),
    )
    op.create_index("ix_materializations_cache_key", "materializations",
                    ["cache_key", "status"])
    op.create_index("ix_materializations_asset_name", "materializations",
                    ["asset_name", "status", "id"])
    op.create_index("ix_materializations_run_id", "materializations", ["run_id"])
    op.create_index("ix_materializations_data_version", "materializations", ["data_version"])
    op.create_table(
        "objects",
        sa.Column("data_version", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "code_sources",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("components", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("code_sources")
    op.drop_table("objects")
    op.drop_table("materializations")
    op.drop_table("runs")
