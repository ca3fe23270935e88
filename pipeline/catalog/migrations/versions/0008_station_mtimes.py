"""stations: whether a station keeps the recorder's mtimes (the clock-drift check trusts a
file's mtime only then)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (SQLite takes one with a default): rebuilding the table would
    # trip the foreign keys that point at stations.
    op.add_column(
        "stations",
        sa.Column("preserves_mtimes", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        batch.drop_column("preserves_mtimes")
