"""station API: push stations, their tokens, presence, uploads and the recorder clock drift
they report

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "stations", sa.Column("pushes", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_table(
        "station_tokens",
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_station_tokens_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_station_tokens")),
    )
    op.create_index(op.f("ix_station_tokens_station_id"), "station_tokens", ["station_id"])
    op.create_table(
        "station_presence",
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("software_version", sa.String(100), nullable=False),
        sa.Column("free_disk_bytes", sa.BigInteger(), nullable=True),
        sa.Column("queue_length", sa.Integer(), nullable=True),
        sa.Column("recorders", sa.JSON(), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("silent_alerted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_station_presence_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("station_id", name=op.f("pk_station_presence")),
    )
    op.create_table(
        "dock_uploads",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("mtime", sa.Float(), nullable=False),
        sa.Column("claim", sa.JSON(), nullable=False),
        sa.Column("docked_at", sa.DateTime(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("placed_path", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_dock_uploads_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dock_uploads")),
    )
    op.create_index(
        "ix_dock_uploads_station_id_sha256", "dock_uploads", ["station_id", "sha256"]
    )
    op.create_table(
        "clock_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("device_serial", sa.String(200), nullable=False),
        sa.Column("offset_s", sa.Float(), nullable=False),
        sa.Column("observed_at", sa.DateTime(), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_clock_reports_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clock_reports")),
    )
    op.create_index(op.f("ix_clock_reports_device_serial"), "clock_reports", ["device_serial"])


def downgrade() -> None:
    op.drop_table("clock_reports")
    op.drop_table("dock_uploads")
    op.drop_table("station_presence")
    op.drop_table("station_tokens")
    with op.batch_alter_table("stations") as batch:
        batch.drop_column("pushes")
