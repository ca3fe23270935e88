"""cases, case officers and links; description and text-record fields on media

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("number", sa.String(64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("department", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("action_start", sa.DateTime(), nullable=True),
        sa.Column("action_end", sa.DateTime(), nullable=True),
        sa.Column("due", sa.Date(), nullable=True),
        sa.Column("due_provisional", sa.Boolean(), nullable=False),
        sa.Column("archived_at", sa.DateTime(), nullable=True),
        sa.Column("archived_on", sa.Date(), nullable=True),
        sa.Column("archive_key", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_cases")),
    )
    op.create_index("ix_cases_status_due", "cases", ["status", "due"])
    op.create_table(
        "case_officers",
        sa.Column("case_number", sa.String(64), nullable=False),
        sa.Column("officer_id", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_number"], ["cases.number"], name=op.f("fk_case_officers_case_number_cases")
        ),
        sa.ForeignKeyConstraint(
            ["officer_id"], ["officers.id"], name=op.f("fk_case_officers_officer_id_officers")
        ),
        sa.PrimaryKeyConstraint("case_number", "officer_id", name=op.f("pk_case_officers")),
    )
    op.create_table(
        "links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_number", sa.String(64), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("removed_at", sa.DateTime(), nullable=True),
        sa.Column("removed_by", sa.String(200), nullable=True),
        sa.Column("removed_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_number"], ["cases.number"], name=op.f("fk_links_case_number_cases")
        ),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"], name=op.f("fk_links_media_id_media")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_links")),
    )
    op.create_index(op.f("ix_links_case_number"), "links", ["case_number"])
    op.create_index(op.f("ix_links_media_id"), "links", ["media_id"])
    with op.batch_alter_table("media") as batch:
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch.add_column(sa.Column("described_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("described_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("record_type", sa.String(32), nullable=True))
        batch.add_column(sa.Column("signature", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("media") as batch:
        for column in ("signature", "record_type", "described_by", "described_at", "description"):
            batch.drop_column(column)
    op.drop_index(op.f("ix_links_media_id"), "links")
    op.drop_index(op.f("ix_links_case_number"), "links")
    op.drop_table("links")
    op.drop_table("case_officers")
    op.drop_index("ix_cases_status_due", "cases")
    op.drop_table("cases")
