"""materializations: the versions of the libraries an asset's code imports

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("materializations") as batch:
        batch.add_column(sa.Column("libraries", sa.Text))  # JSON {distribution: version}


def downgrade() -> None:
    with op.batch_alter_table("materializations") as batch:
        batch.drop_column("libraries")
