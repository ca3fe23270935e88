"""dashboard indexes: covering indexes for the recording figures (issue 18, benchmark 9)

Whether a recording is linked (an active link) and the docking time its station's uploads
reported are looked up per recording row of the period; these indexes answer both from the
index alone, without reading the table's row. Each replaces the index it extends (its
prefix serves the same lookups). Indexes only: no column or row changes.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_links_media_id_removed_at", "links", ["media_id", "removed_at"])
    op.drop_index("ix_links_media_id", "links")
    op.create_index(
        "ix_dock_uploads_station_id_sha256_docked_at",
        "dock_uploads",
        ["station_id", "sha256", "docked_at"],
    )
    op.drop_index("ix_dock_uploads_station_id_sha256", "dock_uploads")


def downgrade() -> None:
    op.create_index("ix_dock_uploads_station_id_sha256", "dock_uploads", ["station_id", "sha256"])
    op.drop_index("ix_dock_uploads_station_id_sha256_docked_at", "dock_uploads")
    op.create_index("ix_links_media_id", "links", ["media_id"])
    op.drop_index("ix_links_media_id_removed_at", "links")
