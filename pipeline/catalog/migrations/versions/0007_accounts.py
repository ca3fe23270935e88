"""accounts: users of the web application, their server-side sessions, failed sign-ins

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("officer_id", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("department", sa.String(200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["officer_id"], ["officers.id"], name=op.f("fk_users_officer_id_officers")
        ),
        sa.PrimaryKeyConstraint("login", name=op.f("pk_users")),
    )
    op.create_index(op.f("ix_users_officer_id"), "users", ["officer_id"])
    op.create_table(
        "user_sessions",
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
        sa.ForeignKeyConstraint(
            ["login"], ["users.login"], name=op.f("fk_user_sessions_login_users")
        ),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_user_sessions")),
    )
    op.create_index(op.f("ix_user_sessions_login"), "user_sessions", ["login"])
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("login_sha256", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_failures")),
    )
    op.create_index("ix_sign_in_failures_address_at", "sign_in_failures", ["address", "at"])
    op.create_index(
        "ix_sign_in_failures_login_sha256_at", "sign_in_failures", ["login_sha256", "at"]
    )


def downgrade() -> None:
    op.drop_table("sign_in_failures")
    op.drop_table("user_sessions")
    op.drop_table("users")
