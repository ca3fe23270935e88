"""hostile docks: a job keeps the raw bytes of a non-UTF-8 name, the identity of the file it
planned (device, inode, ctime), where it was released to, and the job a grown file came from

Revision ID: 0006
Revises: 0005
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS: list[tuple[str, sa.types.TypeEngine[Any]]] = [
    ("source_raw", sa.LargeBinary()),
    ("dev", sa.BigInteger()),
    ("ino", sa.BigInteger()),
    ("ctime_ns", sa.BigInteger()),
    ("released_to", sa.Text()),
    ("grown_from", sa.Integer()),
]


def upgrade() -> None:
    for name, type_ in COLUMNS:
        op.add_column("ingest_jobs", sa.Column(name, type_, nullable=True))
    op.create_index("ix_ingest_jobs_released_to", "ingest_jobs", ["released_to"])


def downgrade() -> None:
    op.drop_index("ix_ingest_jobs_released_to", table_name="ingest_jobs")
    for name, _ in reversed(COLUMNS):
        op.drop_column("ingest_jobs", name)
