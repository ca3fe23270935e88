"""device registry: officers, devices, assignments; identification on media

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "officers",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("cert_no", sa.String(64), nullable=False),
        sa.Column("department", sa.String(200), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_officers")),
        sa.UniqueConstraint("cert_no", name=op.f("uq_officers_cert_no")),
    )
    op.create_table(
        "devices",
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("vendor", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("clock_offset_s", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("serial", name=op.f("pk_devices")),
    )
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_serial", sa.String(64), nullable=False),
        sa.Column("officer_id", sa.String(64), nullable=False),
        sa.Column("start", sa.DateTime(), nullable=False),
        sa.Column("end", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_serial"], ["devices.serial"], name=op.f("fk_assignments_device_serial_devices")
        ),
        sa.ForeignKeyConstraint(
            ["officer_id"], ["officers.id"], name=op.f("fk_assignments_officer_id_officers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
    )
    op.create_index("ix_assignments_device_start", "assignments", ["device_serial", "start"])
    with op.batch_alter_table("media") as batch:
        batch.add_column(sa.Column("device_serial", sa.String(64), nullable=True))
        batch.add_column(sa.Column("officer_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("recorded_start", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("recorded_end", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("time_source", sa.String(16), nullable=True))
        batch.add_column(sa.Column("id_sources", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("flags", sa.JSON(), nullable=False, server_default="[]"))
        batch.create_index("ix_media_device_recorded", ["device_serial", "recorded_start"])
        batch.create_index("ix_media_officer_recorded", ["officer_id", "recorded_start"])
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("resolved_by", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("resolved_by")
    with op.batch_alter_table("media") as batch:
        batch.drop_index("ix_media_officer_recorded")
        batch.drop_index("ix_media_device_recorded")
        for column in (
            "flags",
            "id_sources",
            "time_source",
            "recorded_end",
            "recorded_start",
            "officer_id",
            "device_serial",
        ):
            batch.drop_column(column)
    op.drop_index("ix_assignments_device_start", "assignments")
    op.drop_table("assignments")
    op.drop_table("devices")
    op.drop_table("officers")
