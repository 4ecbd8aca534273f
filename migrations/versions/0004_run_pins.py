"""run_pins: the data versions each live run relies on (gc pins kept in the database,
for stores whose runs share it across machines)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_pins",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("data_version", sa.String(64), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("run_pins")
