"""search: tags on media, a text document per media item and its index, time indexes

The document (``search_text.body``) is the file name, the description, the tags and the titles
of the cases the item is linked to, one per line. Triggers keep it current on every write path
(media insert and describe, tag, link and unlink, case title change), so no caller has to.
SQLite indexes it with FTS5's trigram tokenizer (``search_fts``, external content: the text is
stored once, in search_text; ``search_fts_vocab`` lists its trigrams); PostgreSQL with a
pg_trgm GIN index, which LIKE/ILIKE use.
Existing rows are indexed here, in bulk, before the triggers exist.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The document of media row `m`, in SQLite. One line per part: a query has no line breaks, so a
# match never runs across two parts. The last line ends too, so that every two characters of
# the text begin a trigram: that is how two-character text is found in the index.
SQLITE_BODY = """
    m.original_name || char(10) || coalesce(m.description, '') || char(10)
    || coalesce((SELECT group_concat(t.tag, char(10)) FROM media_tags t
                 WHERE t.media_id = m.id), '') || char(10)
    || coalesce((SELECT group_concat(c.title, char(10)) FROM links l
                 JOIN cases c ON c.number = l.case_number
                 WHERE l.media_id = m.id AND l.removed_at IS NULL), '') || char(10)
"""


def _sqlite_refresh(media_id: str) -> str:
    return (
        f"UPDATE search_text SET body = (SELECT {SQLITE_BODY} FROM media m WHERE m.id = {media_id})"
        f" WHERE media_id = {media_id};"
    )


SQLITE_TRIGGERS = [
    # search_text -> search_fts: the documented sync of an external-content FTS5 table.
    """CREATE TRIGGER search_text_insert AFTER INSERT ON search_text BEGIN
        INSERT INTO search_fts (rowid, body) VALUES (NEW.media_id, NEW.body);
    END""",
    """CREATE TRIGGER search_text_update AFTER UPDATE ON search_text
    WHEN OLD.body IS NOT NEW.body BEGIN
        INSERT INTO search_fts (search_fts, rowid, body) VALUES ('delete', OLD.media_id, OLD.body);
        INSERT INTO search_fts (rowid, body) VALUES (NEW.media_id, NEW.body);
    END""",
    """CREATE TRIGGER search_text_delete AFTER DELETE ON search_text BEGIN
        INSERT INTO search_fts (search_fts, rowid, body) VALUES ('delete', OLD.media_id, OLD.body);
    END""",
    # Catalog tables -> search_text.
    f"""CREATE TRIGGER search_media_insert AFTER INSERT ON media BEGIN
        INSERT INTO search_text (media_id, body)
        SELECT m.id, {SQLITE_BODY} FROM media m WHERE m.id = NEW.id;
    END""",
    f"""CREATE TRIGGER search_media_update AFTER UPDATE OF original_name, description ON media
    WHEN OLD.original_name IS NOT NEW.original_name OR OLD.description IS NOT NEW.description
    BEGIN {_sqlite_refresh("NEW.id")} END""",
    f"""CREATE TRIGGER search_tag_insert AFTER INSERT ON media_tags
    BEGIN {_sqlite_refresh("NEW.media_id")} END""",
    f"""CREATE TRIGGER search_tag_delete AFTER DELETE ON media_tags
    BEGIN {_sqlite_refresh("OLD.media_id")} END""",
    f"""CREATE TRIGGER search_link_insert AFTER INSERT ON links
    BEGIN {_sqlite_refresh("NEW.media_id")} END""",
    f"""CREATE TRIGGER search_link_update AFTER UPDATE OF media_id, case_number, removed_at ON links
    BEGIN {_sqlite_refresh("OLD.media_id")} {_sqlite_refresh("NEW.media_id")} END""",
    f"""CREATE TRIGGER search_link_delete AFTER DELETE ON links
    BEGIN {_sqlite_refresh("OLD.media_id")} END""",
    # cases.save rewrites every column: only a changed title touches the linked items.
    f"""CREATE TRIGGER search_case_title AFTER UPDATE OF title ON cases
    WHEN OLD.title IS NOT NEW.title BEGIN
        UPDATE search_text
        SET body = (SELECT {SQLITE_BODY} FROM media m WHERE m.id = search_text.media_id)
        WHERE media_id IN (SELECT media_id FROM links WHERE case_number = NEW.number);
    END""",
]
SQLITE_TRIGGER_NAMES = [t.split()[2] for t in SQLITE_TRIGGERS]

POSTGRES_FUNCTIONS = [
    r"""CREATE FUNCTION search_body(item integer) RETURNS text LANGUAGE sql STABLE AS $$
        SELECT m.original_name || E'\n' || coalesce(m.description, '') || E'\n'
            || coalesce((SELECT string_agg(t.tag, E'\n') FROM media_tags t
                         WHERE t.media_id = m.id), '') || E'\n'
            || coalesce((SELECT string_agg(c.title, E'\n') FROM links l
                         JOIN cases c ON c.number = l.case_number
                         WHERE l.media_id = m.id AND l.removed_at IS NULL), '') || E'\n'
        FROM media m WHERE m.id = item
    $$""",
    """CREATE FUNCTION search_refresh(items integer[]) RETURNS void LANGUAGE sql AS $$
        INSERT INTO search_text (media_id, body)
        SELECT m.id, search_body(m.id) FROM media m WHERE m.id = ANY(items)
        ON CONFLICT (media_id) DO UPDATE SET body = EXCLUDED.body
        WHERE search_text.body IS DISTINCT FROM EXCLUDED.body
    $$""",
    """CREATE FUNCTION search_on_media() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM search_refresh(ARRAY[NEW.id]);
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION search_on_media_ref() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM search_refresh(ARRAY[OLD.media_id]); END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN PERFORM search_refresh(ARRAY[NEW.media_id]); END IF;
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION search_on_case() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM search_refresh(ARRAY(SELECT media_id FROM links WHERE case_number = NEW.number));
        RETURN NULL;
    END $$""",
]
POSTGRES_TRIGGERS = [
    """CREATE TRIGGER search_media AFTER INSERT OR UPDATE OF original_name, description ON media
    FOR EACH ROW EXECUTE FUNCTION search_on_media()""",
    """CREATE TRIGGER search_tags AFTER INSERT OR DELETE ON media_tags
    FOR EACH ROW EXECUTE FUNCTION search_on_media_ref()""",
    """CREATE TRIGGER search_links AFTER INSERT OR DELETE
    OR UPDATE OF media_id, case_number, removed_at ON links
    FOR EACH ROW EXECUTE FUNCTION search_on_media_ref()""",
    """CREATE TRIGGER search_case_title AFTER UPDATE OF title ON cases
    FOR EACH ROW WHEN (OLD.title IS DISTINCT FROM NEW.title)
    EXECUTE FUNCTION search_on_case()""",
]
POSTGRES_TRIGGER_TABLES = {
    "search_media": "media",
    "search_tags": "media_tags",
    "search_links": "links",
    "search_case_title": "cases",
}


def upgrade() -> None:
    op.create_table(
        "media_tags",
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["media_id"], ["media.id"], name=op.f("fk_media_tags_media_id_media")
        ),
        sa.PrimaryKeyConstraint("media_id", "tag", name=op.f("pk_media_tags")),
    )
    op.create_index("ix_media_tags_tag", "media_tags", ["tag", "media_id"])
    op.create_table(
        "search_text",
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["media_id"], ["media.id"], name=op.f("fk_search_text_media_id_media")
        ),
        sa.PrimaryKeyConstraint("media_id", name=op.f("pk_search_text")),
    )
    op.create_index("ix_media_recorded_start", "media", ["recorded_start"])
    op.create_index("ix_media_ingested_at", "media", ["ingested_at"])
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_upgrade()
    else:
        _postgres_upgrade()


def _sqlite_upgrade() -> None:
    op.execute(f"INSERT INTO search_text (media_id, body) SELECT m.id, {SQLITE_BODY} FROM media m")
    # Trigram: every three characters are a token, so any substring of three or more
    # characters (Chinese included, where words are not separated) is found by the index.
    op.execute(
        "CREATE VIRTUAL TABLE search_fts USING fts5(body, content='search_text',"
        " content_rowid='media_id', tokenize='trigram')"
    )
    op.execute("INSERT INTO search_fts (search_fts) VALUES ('rebuild')")
    # The index's trigrams, to look up those that begin with two given characters.
    op.execute("CREATE VIRTUAL TABLE search_fts_vocab USING fts5vocab(search_fts, row)")
    for trigger in SQLITE_TRIGGERS:
        op.execute(trigger)


def _postgres_upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for function in POSTGRES_FUNCTIONS:
        op.execute(function)
    op.execute("INSERT INTO search_text (media_id, body) SELECT id, search_body(id) FROM media")
    op.execute(
        "CREATE INDEX ix_search_text_body_trgm ON search_text USING gin (body gin_trgm_ops)"
    )
    for trigger in POSTGRES_TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE search_fts_vocab")
        op.execute("DROP TABLE search_fts")
    else:
        for name, table in POSTGRES_TRIGGER_TABLES.items():
            op.execute(f"DROP TRIGGER {name} ON {table}")
        for function in ("search_on_case", "search_on_media_ref", "search_on_media"):
            op.execute(f"DROP FUNCTION {function}()")
        op.execute("DROP FUNCTION search_refresh(integer[])")
        op.execute("DROP FUNCTION search_body(integer)")
        op.execute("DROP INDEX ix_search_text_body_trgm")
    op.drop_index("ix_media_ingested_at", "media")
    op.drop_index("ix_media_recorded_start", "media")
    op.drop_table("search_text")
    op.drop_index("ix_media_tags_tag", "media_tags")
    op.drop_table("media_tags")
