"""disposal: the retention sweeps' candidates, disposal requests and their items, tombstones

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_sweeps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("candidates", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_sweeps")),
    )
    op.create_table(
        "retention_candidates",
        sa.Column("sweep_id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sweep_id"],
            ["retention_sweeps.id"],
            name=op.f("fk_retention_candidates_sweep_id_retention_sweeps"),
        ),
        sa.ForeignKeyConstraint(
            ["media_id"], ["media.id"], name=op.f("fk_retention_candidates_media_id_media")
        ),
        sa.PrimaryKeyConstraint("sweep_id", "media_id", name=op.f("pk_retention_candidates")),
    )
    op.create_table(
        "disposal_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("sweep_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("grace_until", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.login"], name=op.f("fk_disposal_requests_requested_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["sweep_id"],
            ["retention_sweeps.id"],
            name=op.f("fk_disposal_requests_sweep_id_retention_sweeps"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disposal_requests")),
    )
    op.create_index(
        op.f("ix_disposal_requests_requested_by"), "disposal_requests", ["requested_by"]
    )
    op.create_index(
        "ix_disposal_requests_state_requested_at", "disposal_requests", ["state", "requested_at"]
    )
    op.create_table(
        "disposal_items",
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["disposal_requests.id"],
            name=op.f("fk_disposal_items_request_id_disposal_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["media_id"], ["media.id"], name=op.f("fk_disposal_items_media_id_media")
        ),
        sa.PrimaryKeyConstraint("request_id", "media_id", name=op.f("pk_disposal_items")),
    )
    op.create_index("ix_disposal_items_media_id", "disposal_items", ["media_id"])
    op.create_index("ix_disposal_items_state", "disposal_items", ["state"])
    op.create_table(
        "disposal_tombstones",
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("ingested_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_start", sa.DateTime(), nullable=True),
        sa.Column("recorded_end", sa.DateTime(), nullable=True),
        sa.Column("retention_until", sa.DateTime(), nullable=True),
        sa.Column("retention_reasons", sa.JSON(), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("approved_by", sa.String(64), nullable=False),
        sa.Column("approved_at", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("disposed_at", sa.DateTime(), nullable=False),
        sa.Column("disposed_by", sa.String(200), nullable=False),
        sa.Column("derived_left", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["media_id"], ["media.id"], name=op.f("fk_disposal_tombstones_media_id_media")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["disposal_requests.id"],
            name=op.f("fk_disposal_tombstones_request_id_disposal_requests"),
        ),
        sa.PrimaryKeyConstraint("media_id", name=op.f("pk_disposal_tombstones")),
    )


def downgrade() -> None:
    for table in (
        "disposal_tombstones",
        "disposal_items",
        "disposal_requests",
        "retention_candidates",
        "retention_sweeps",
    ):
        op.drop_table(table)
