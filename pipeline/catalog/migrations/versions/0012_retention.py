"""retention: important-file marks, assigned retention classes, legal holds and the records
they cover, the lock date of each original (issue 19)

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _media(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["media_id"], ["media.id"], name=op.f(f"fk_{table}_media_id_media")
    )


def upgrade() -> None:
    op.create_table(
        "retention_marks",
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("matched", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("marked_by", sa.String(200), nullable=False),
        sa.Column("marked_at", sa.DateTime(), nullable=False),
        _media("retention_marks"),
        sa.PrimaryKeyConstraint("media_id", name=op.f("pk_retention_marks")),
    )
    op.create_table(
        "retention_assigned",
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("assigned_by", sa.String(200), nullable=False),
        sa.Column("assigned_at", sa.DateTime(), nullable=False),
        _media("retention_assigned"),
        sa.PrimaryKeyConstraint("media_id", name=op.f("pk_retention_assigned")),
    )
    op.create_table(
        "retention_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("case_number", sa.String(64), nullable=True),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_by", sa.String(200), nullable=False),
        sa.Column("placed_at", sa.DateTime(), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=True),
        sa.Column("released_at", sa.DateTime(), nullable=True),
        sa.Column("released_by", sa.String(200), nullable=True),
        sa.Column("released_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_number"], ["cases.number"], name=op.f("fk_retention_holds_case_number_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_holds")),
    )
    op.create_index(op.f("ix_retention_holds_case_number"), "retention_holds", ["case_number"])
    op.create_index("ix_retention_holds_released_at", "retention_holds", ["released_at"])
    op.create_table(
        "retention_hold_items",
        sa.Column("hold_id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["hold_id"],
            ["retention_holds.id"],
            name=op.f("fk_retention_hold_items_hold_id_retention_holds"),
        ),
        _media("retention_hold_items"),
        sa.PrimaryKeyConstraint("hold_id", "media_id", name=op.f("pk_retention_hold_items")),
    )
    op.create_index(
        "ix_retention_hold_items_media_id", "retention_hold_items", ["media_id", "hold_id"]
    )
    op.create_table(
        "retention_locks",
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("lock_until", sa.DateTime(), nullable=False),
        sa.Column("held", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        _media("retention_locks"),
        sa.PrimaryKeyConstraint("media_id", name=op.f("pk_retention_locks")),
    )


def downgrade() -> None:
    for table in (
        "retention_locks",
        "retention_hold_items",
        "retention_holds",
        "retention_assigned",
        "retention_marks",
    ):
        op.drop_table(table)
