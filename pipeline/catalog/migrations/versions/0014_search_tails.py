"""search tails: an index of every two characters of the search documents (PostgreSQL)

pg_trgm (migration 0005) holds trigrams, so text of one or two characters (two Chinese
characters are a common search) had no index on PostgreSQL: a word in no item read every
document. Here each document's bigrams, every two characters of its lower-cased text, become a
``tsvector`` (``search_grams(body)``: lexemes taken as they are, no parser, no dictionary) in a
GIN expression index on ``search_text``: built-in PostgreSQL, no extension. Two characters are
one lexeme; one character the lexemes it begins (every document ends in a line break, so every
character of it begins one); ``search_grams_query`` makes that lookup from the text typed, with
the same lower-casing. PostgreSQL keeps an expression index current with its row, so the
triggers of 0005 that write ``search_text`` keep this one current too: no trigger is added.

SQLite needs nothing: its FTS5 vocabulary (0005) already lists the trigrams that two
characters begin. Existing documents are indexed by the CREATE INDEX itself.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# Longer documents are not split (a tsvector holds at most 1 MB, ~87,000 bigrams): they get
# one lexeme that no text typed can hold (a control character, which the query parser
# refuses) and that every lookup asks for as well, so that they stay candidates; the text of
# each candidate is confirmed after the lookup.
LONGEST = 60_000
UNSPLIT = "chr(1)"


def _quoted(lexeme: str) -> str:
    """SQL for a lexeme as tsquery text quotes it: in quotes, a quote doubled, a backslash
    escaped."""
    return rf"'''' || replace(replace({lexeme}, '\', '\\'), '''', '''''') || ''''"


POSTGRES_FUNCTIONS = [
    # IMMUTABLE (lower() is, for the database's fixed collation), as an index expression must
    # be; PL/pgSQL, so that it is never inlined: its COST tells the planner that a scan which
    # computes it row by row is dear, and the index is the way. Bigrams across a line break
    # are indexed too: no text typed holds a line break, so none is looked up, and they let a
    # character at a line's end be found.
    f"""CREATE FUNCTION search_grams(body text) RETURNS tsvector
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 1000 AS $$
    DECLARE
        c text[] := string_to_array(lower(body), NULL);
        grams text[] := '{{}}';
    BEGIN
        IF cardinality(c) > {LONGEST} THEN
            RETURN array_to_tsvector(ARRAY[{UNSPLIT}]);
        END IF;
        FOR i IN 1 .. cardinality(c) - 1 LOOP
            grams := grams || (c[i] || c[i + 1]);
        END LOOP;
        RETURN array_to_tsvector(grams);
    END $$""",
    # The lookup of text in search_grams: all of its bigrams (two characters or more), or
    # the bigrams it begins (one character); or a document too long to be split.
    f"""CREATE FUNCTION search_grams_query(needle text) RETURNS tsquery
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
        SELECT (CASE WHEN cardinality(c) = 1 THEN {_quoted("c[1]")} || ':*'
            ELSE (SELECT '(' || string_agg({_quoted("c[i] || c[i + 1]")}, ' & ') || ')'
                  FROM generate_series(1, cardinality(c) - 1) AS i) END
            || ' | ' || {_quoted(UNSPLIT)})::tsquery
        FROM (SELECT string_to_array(lower(needle), NULL) AS c) AS chars
    $$""",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for function in POSTGRES_FUNCTIONS:
        op.execute(function)
    # GIN builds in memory and merges: more of it, fewer merges (this transaction only).
    op.execute("SET LOCAL maintenance_work_mem = '256MB'")
    op.execute("CREATE INDEX ix_search_text_grams ON search_text USING gin (search_grams(body))")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.execute("DROP INDEX ix_search_text_grams")
    op.execute("DROP FUNCTION search_grams_query(text)")
    op.execute("DROP FUNCTION search_grams(text)")
