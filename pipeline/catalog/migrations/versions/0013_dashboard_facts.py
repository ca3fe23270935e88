"""dashboard facts: when each item's bytes reached a dock, kept on its media row (issue 18)

Upload timeliness (上传及时率) counts the recordings docked within a limit after they ended.
Until now the dashboard found each recording's docking time per row of the period: the
earliest ``docked_at`` its station's uploads of those bytes reported, else its ingest, and
then the delay from two parsed times. At a year of an agency that lookup and the two parses
were most of the agency-wide figures' cost (benchmark 9). Both are known when the item is
ingested and change only with its recording time, so they are kept on the row:

* ``docked_at``: the earliest docking time its station's uploads reported, else its ingest;
* ``dock_delay_s``: seconds from the end of the recording (a photo: its taking) to
  ``docked_at``, to the millisecond; NULL for an item without a recording time.

Existing rows are filled from their uploads as the dashboard read them.

And ``linked``: whether the item belongs to a case now (an active link), which link rate
(关联率) counts per recording of the period. Kept by triggers on ``links``, so that every way a
link is made, removed or moved keeps it (the search index is kept the same way, 0005).

An index on ``cases.action_end``: the dashboard counts case files by the day their act ended
(a period, a week or a month of the trends), which read every case file without it.

And ``department_summaries``: the daily compliance sweep's summary per department (due soon,
overdue, coverage failures, late uploads), which the dashboard shows at its top as of the
sweep rather than computing the coverage of every pending case file when it is opened.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_FIRST_DOCKED = """COALESCE((SELECT MIN(u.docked_at) FROM dock_uploads u
    WHERE u.station_id = media.station_id AND u.sha256 = media.sha256), ingested_at)"""
_ENDED = "COALESCE(recorded_end, recorded_start)"
_DELAY = {
    "sqlite": f"ROUND((julianday(docked_at) - julianday({_ENDED})) * 86400.0, 3)",
    "postgresql": f"ROUND(CAST(EXTRACT(EPOCH FROM docked_at - {_ENDED}) AS NUMERIC), 3)",
}


_LINKED = """EXISTS (SELECT 1 FROM links l
    WHERE l.media_id = media.id AND l.removed_at IS NULL)"""

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER media_linked_insert AFTER INSERT ON links BEGIN
        UPDATE media SET linked = {_LINKED} WHERE id = NEW.media_id;
    END""",
    f"""CREATE TRIGGER media_linked_update AFTER UPDATE OF media_id, removed_at ON links BEGIN
        UPDATE media SET linked = {_LINKED} WHERE id IN (OLD.media_id, NEW.media_id);
    END""",
    f"""CREATE TRIGGER media_linked_delete AFTER DELETE ON links BEGIN
        UPDATE media SET linked = {_LINKED} WHERE id = OLD.media_id;
    END""",
]

POSTGRES = [
    f"""CREATE FUNCTION media_linked_on_links() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            UPDATE media SET linked = {_LINKED} WHERE id = OLD.media_id;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            UPDATE media SET linked = {_LINKED} WHERE id = NEW.media_id;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER media_linked AFTER INSERT OR DELETE OR UPDATE OF media_id, removed_at
    ON links FOR EACH ROW EXECUTE FUNCTION media_linked_on_links()""",
]


def upgrade() -> None:
    # Plain ADD COLUMN on both (a batch would copy the table on SQLite, and its triggers).
    op.add_column("media", sa.Column("docked_at", sa.DateTime(), nullable=True))
    op.add_column("media", sa.Column("dock_delay_s", sa.Float(), nullable=True))
    op.add_column(
        "media", sa.Column("linked", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    dialect = op.get_bind().dialect.name
    op.execute(f"UPDATE media SET linked = {_LINKED}")
    for statement in SQLITE_TRIGGERS if dialect == "sqlite" else POSTGRES:
        op.execute(statement)
    op.execute(f"UPDATE media SET docked_at = {_FIRST_DOCKED}")
    op.execute(f"UPDATE media SET dock_delay_s = {_DELAY[dialect]} WHERE {_ENDED} IS NOT NULL")
    op.create_index("ix_cases_action_end", "cases", ["action_end"])
    op.create_table(
        "department_summaries",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
    )
