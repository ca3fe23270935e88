"""Tables of the catalog. Alembic migrations in ``migrations/`` create exactly these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC without a zone (portable), returns timezone-aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime given to the catalog: {value!r}")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


stations = Table(
    "stations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, default=""),
    Column("root", Text, nullable=False),
    Column("location", String(200), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("preserves_mtimes", Boolean, nullable=False, default=False),
    Column("pushes", Boolean, nullable=False, default=False),
)

media = Table(
    "media",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("original_name", Text, nullable=False),
    Column("station_id", String(64), ForeignKey("stations.id"), nullable=False),
    Column("source_path", Text, nullable=False),
    Column("ingested_at", UTCDateTime, nullable=False),
    Column("container", String(64)),
    Column("duration_s", Float),
    Column("video_codec", String(64)),
    Column("audio_codec", String(64)),
    Column("width", Integer),
    Column("height", Integer),
    Column("frame_rate", Float),
    Column("encoded_at", UTCDateTime),
    Column("recorded_at", UTCDateTime),
    Column("make", String(200)),
    Column("model", String(200)),
    Column("serial", String(200)),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("extra", JSON, nullable=False, default=dict),
    Column("proxy_key", Text),
    Column("thumbnail_key", Text),
    Column("quarantine_reason", Text),
    # Identification and attribution (migration 0003): which device, when, who held it.
    Column("device_serial", String(64)),
    Column("officer_id", String(64)),
    Column("recorded_start", UTCDateTime),
    Column("recorded_end", UTCDateTime),
    Column("time_source", String(16)),
    Column("id_sources", JSON, nullable=False, default=dict),
    Column("flags", JSON, nullable=False, default=list),
    # Case file fields (migration 0004): the written description (文字说明) of a recording,
    # and for text records (笔录) their type and whether the party signed.
    Column("description", Text),
    Column("described_at", UTCDateTime),
    Column("described_by", String(200)),
    Column("record_type", String(32)),
    Column("signature", String(32)),
    # Dashboard facts (migration 0013): when its bytes reached a dock (the earliest docking
    # time its station's uploads reported, else its ingest) and the seconds from the end of
    # the recording to then — what upload timeliness (上传及时率) counts, kept on the row so
    # that the dashboard reads no upload per recording (pipeline.catalog.media.docking).
    Column("docked_at", UTCDateTime),
    Column("dock_delay_s", Float),
    # Whether it belongs to a case now (an active link): kept by triggers on ``links``
    # (migration 0013), never written by the code; link rate (关联率) counts it.
    Column("linked", Boolean, nullable=False, server_default=false()),
    Index("ix_media_recorded_at", "recorded_at"),
    Index("ix_media_status", "status"),
    Index("ix_media_device_recorded", "device_serial", "recorded_start"),
    Index("ix_media_officer_recorded", "officer_id", "recorded_start"),
)

# The daily summary per department (migration 0013): what the compliance sweep found each
# unit has to act on, kept so that the dashboard shows it at its top without recomputing the
# coverage of every pending case file (pipeline.supervision.alerts).
department_summaries = Table(
    "department_summaries",
    metadata,
    Column("day", Date, primary_key=True),  # the local day of the sweep; its last run kept
    Column("computed_at", UTCDateTime, nullable=False),
    # [{"department", "due_soon", "overdue", "coverage_failures", "late_uploads"}, …]: the
    # units with something to act on ("" for cases and recordings of no department).
    Column("summary", JSON, nullable=False),
)

# Every time a dock offered bytes we already had (or had for the first time).
sightings = Table(
    "sightings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("media_id", Integer, ForeignKey("media.id"), nullable=False, index=True),
    Column("station_id", String(64), nullable=False),
    Column("source_path", Text, nullable=False),
    Column("job_id", Integer, ForeignKey("ingest_jobs.id"), nullable=False, unique=True),
    Column("seen_at", UTCDateTime, nullable=False),
)

# Durable ingest jobs: one per (file, size, mtime) seen on a dock. A crash leaves the job at
# its last recorded step; the next run reclaims it once its owner is gone.
ingest_jobs = Table(
    "ingest_jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("station_id", String(64), ForeignKey("stations.id"), nullable=False),
    Column("source_path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("sha256", String(64)),
    Column("media_id", Integer, ForeignKey("media.id")),
    Column("outcome", String(16)),
    Column("owner", String(200)),
    Column("lease_until", UTCDateTime),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The name's bytes when they are not UTF-8 (source_path then holds a readable form).
    Column("source_raw", LargeBinary),
    # Which file was planned: the copy must read this one (a swap is refused).
    Column("dev", BigInteger),
    Column("ino", BigInteger),
    Column("ctime_ns", BigInteger),
    # Where release = "move" put the source (below the station root), to notice a late writer.
    Column("released_to", Text),
    # A file that grew after an earlier version was released: that version's job.
    Column("grown_from", Integer),
    UniqueConstraint("station_id", "source_path", "size", "mtime_ns", name="uq_ingest_jobs_file"),
    Index("ix_ingest_jobs_state", "state"),
    Index("ix_ingest_jobs_released_to", "released_to"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("station_id", String(64), nullable=False),
    Column("source_path", Text, nullable=False),
    Column("code", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("sha256", String(64)),
    Column("media_id", Integer, ForeignKey("media.id")),
    Column("job_id", Integer, ForeignKey("ingest_jobs.id")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    Column("resolved_by", String(200)),
)

# Device registry (migration 0003). Assignments are history: ended, never deleted.
officers = Table(
    "officers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("cert_no", String(64), nullable=False, unique=True),
    Column("department", String(200), nullable=False, default=""),
    Column("roles", JSON, nullable=False, default=list),
    Column("updated_at", UTCDateTime, nullable=False),
)

devices = Table(
    "devices",
    metadata,
    Column("serial", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("vendor", String(200), nullable=False, default=""),
    Column("model", String(200), nullable=False, default=""),
    Column("clock_offset_s", Float, nullable=False, default=0.0),
    Column("updated_at", UTCDateTime, nullable=False),
)

assignments = Table(
    "assignments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("device_serial", String(64), ForeignKey("devices.serial"), nullable=False),
    Column("officer_id", String(64), ForeignKey("officers.id"), nullable=False),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime),
    Index("ix_assignments_device_start", "device_serial", "start"),
)

# Cases (案件/案卷) and their links to media (migration 0004). Links are history: an unlinked
# record keeps its row with who removed it and why.
cases = Table(
    "cases",
    metadata,
    Column("number", String(64), primary_key=True),
    Column("title", Text, nullable=False),
    Column("category", String(64), nullable=False),
    Column("department", String(200), nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("action_start", UTCDateTime),
    Column("action_end", UTCDateTime),
    Column("due", Date),
    Column("due_provisional", Boolean, nullable=False, default=False),
    Column("archived_at", UTCDateTime),
    Column("archived_on", Date),  # local date of sealing, compared with the due date
    Column("archive_key", Text),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_cases_status_due", "status", "due"),
    # The dashboard counts case files by the day their act ended (migration 0013).
    Index("ix_cases_action_end", "action_end"),
)

case_officers = Table(
    "case_officers",
    metadata,
    Column("case_number", String(64), ForeignKey("cases.number"), primary_key=True),
    Column("officer_id", String(64), ForeignKey("officers.id"), primary_key=True),
)

links = Table(
    "links",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("case_number", String(64), ForeignKey("cases.number"), nullable=False, index=True),
    Column("media_id", Integer, ForeignKey("media.id"), nullable=False),
    Column("method", String(16), nullable=False),
    Column("rule", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("removed_at", UTCDateTime),
    Column("removed_by", String(200)),
    Column("removed_reason", Text),
    # Covering: whether an item is linked is answered from the index alone (0011).
    Index("ix_links_media_id_removed_at", "media_id", "removed_at"),
)

# Append-only, hash-chained custody log. The head row serialises writers on every database:
# a writer locks it (SELECT ... FOR UPDATE / SQLite's write lock), so the chain never forks.
custody_events = Table(
    "custody_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("media_id", Integer, index=True),
    Column("station_id", String(64)),
    Column("subject", Text, nullable=False, default=""),
    Column("details", JSON, nullable=False, default=dict),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

custody_head = Table(
    "custody_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

# Signed checkpoints of the custody chain (migration 0002): the head (seq, hash) at a moment,
# signed with the instance's Ed25519 key. A log rewritten or cut short no longer matches them.
custody_checkpoints = Table(
    "custody_checkpoints",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
)

# `evidence audit --actor` (migration 0002).
Index("ix_custody_events_actor", custody_events.c.actor, custody_events.c.seq)

# Search (migration 0005). Free tags on media: a removed tag loses its row; its history is in
# the custody log (TAGGED events).
media_tags = Table(
    "media_tags",
    metadata,
    Column("media_id", Integer, ForeignKey("media.id"), primary_key=True),
    Column("tag", String(64), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Index("ix_media_tags_tag", "tag", "media_id"),
)

# One text document per media item, what bare words of a query search: file name, description,
# tags and titles of the cases it is linked to, one per line. Triggers of migration 0005 keep it
# current, so no write path has to remember it.
search_text = Table(
    "search_text",
    metadata,
    Column("media_id", Integer, ForeignKey("media.id"), primary_key=True),
    Column("body", Text, nullable=False),
)

# Time ranges and the default sort (newest recording first) of `evidence search`.
Index("ix_media_recorded_start", media.c.recorded_start)
Index("ix_media_ingested_at", media.c.ingested_at)

# What indexes search_text cannot be declared here, being one database's own: SQLite's FTS5
# table `search_fts` (with its shadow tables search_fts_data, _idx, _docsize, _config, and its
# vocabulary search_fts_vocab) and PostgreSQL's pg_trgm GIN index. Migration 0005 makes them; a
# schema comparison skips them. So is PostgreSQL's GIN index of the documents' bigrams, an
# index on an expression of its own functions (migration 0014, issue 20).
UNDECLARED = ("search_fts", "ix_search_text_body_trgm", "ix_search_text_grams")


def declared_elsewhere(name: str | None) -> bool:
    """True for a table or index of the search index that only a migration (0005, 0014) declares."""
    return name is not None and name.startswith(UNDECLARED)


# Accounts of the web application (migration 0007). A user is a person of the registry (an
# officer) with a login; the password is kept only as its Argon2id hash.
users = Table(
    "users",
    metadata,
    Column("login", String(64), primary_key=True),
    Column("officer_id", String(64), ForeignKey("officers.id"), nullable=False, index=True),
    Column("password_hash", String(256), nullable=False),
    Column("roles", JSON, nullable=False, default=list),
    Column("department", String(200), nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Server-side sessions: the cookie holds a random token, the catalog only its SHA-256, so a
# copy of the catalog signs nobody in. Revoked sessions keep their row (when, by whom).
user_sessions = Table(
    "user_sessions",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("login", String(64), ForeignKey("users.login"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("address", String(64), nullable=False, default=""),
    Column("revoked_at", UTCDateTime),
    Column("revoked_by", String(200)),
)

# Failed sign-ins within the lockout window since the login's last success. Any login typed
# is counted, known or not (no FK: a lockout must not tell which logins exist), by the SHA-256
# of what was typed, which may have been a password typed into the wrong box; and by the
# address they came from (one address trying many logins).
sign_in_failures = Table(
    "sign_in_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("login_sha256", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("address", String(64), nullable=False, default=""),  # the client's, "" unknown
    Index("ix_sign_in_failures_login_sha256_at", "login_sha256", "at"),
    Index("ix_sign_in_failures_address_at", "address", "at"),
)

# ------------------------------------------------------------------ station API (issue 17)

# A station's bearer tokens: only their SHA-256 (a token is 32 random bytes, so a plain hash
# is enough; a copy of the catalog authenticates no station). Revoked tokens keep their row.
station_tokens = Table(
    "station_tokens",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("station_id", String(64), ForeignKey("stations.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("revoked_by", String(200)),
    Column("last_used_at", UTCDateTime),
)

# What a pushing station said of itself at its last register or keepalive.
station_presence = Table(
    "station_presence",
    metadata,
    Column("station_id", String(64), ForeignKey("stations.id"), primary_key=True),
    Column("registered_at", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("software_version", String(100), nullable=False, default=""),
    Column("free_disk_bytes", BigInteger),
    Column("queue_length", Integer),
    Column("recorders", JSON, nullable=False, default=list),
    Column("address", String(64), nullable=False, default=""),
    Column("silent_alerted_at", UTCDateTime),  # the compliance sweep's alert, once per silence
)

# Uploads of a pushing station (tus): the bytes go to settings.uploads_dir/<id>.part; once
# whole and checked they are placed in the station's intake folder (``placed_path``), where
# the station's ingest takes them like any dock file.
dock_uploads = Table(
    "dock_uploads",
    metadata,
    Column("id", String(64), primary_key=True),  # random: an upload's URL is not guessable
    Column("station_id", String(64), ForeignKey("stations.id"), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("received", BigInteger, nullable=False, default=0),  # the tus Upload-Offset
    Column("path", Text, nullable=False),  # below the station's dump folder, "/"-separated
    Column("mtime", Float, nullable=False),
    Column("claim", JSON, nullable=False, default=dict),  # serial, officer, unit (over USB)
    Column("docked_at", UTCDateTime),
    Column("state", String(16), nullable=False),
    Column("reason", Text),
    Column("placed_path", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Covering: an item's reported docking time read from the index alone (0011).
    Index("ix_dock_uploads_station_id_sha256_docked_at", "station_id", "sha256", "docked_at"),
)

# Recorder clock drift a station saw when it set the recorder's clock (positive: fast).
clock_reports = Table(
    "clock_reports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("station_id", String(64), ForeignKey("stations.id"), nullable=False),
    Column("device_serial", String(200), nullable=False, index=True),  # as the station read it
    Column("offset_s", Float, nullable=False),
    Column("observed_at", UTCDateTime, nullable=False),
    Column("reported_at", UTCDateTime, nullable=False),
)

# ------------------------------------------------------- access approvals (issue 18, part 1)

# Requests to view, copy or export evidence, and their decisions (调阅审批, migration 0010).
# A grant is its request once granted: it covers exactly ``media`` (the item ids, asked by
# id or as a case's records when asked) and ``action`` until ``expires_at``. Decided rows
# are history and stay.
access_requests = Table(
    "access_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("requested_by", String(64), ForeignKey("users.login"), nullable=False, index=True),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("action", String(32), nullable=False),
    Column("media", JSON, nullable=False, default=list),
    Column("case_number", String(64)),
    Column("reason", Text, nullable=False),
    Column("hours", Integer, nullable=False),  # asked for
    Column("state", String(16), nullable=False),  # waiting, granted, refused
    Column("decided_by", String(64)),
    Column("decided_at", UTCDateTime),
    Column("comment", Text),
    Column("granted_hours", Integer),
    Column("expires_at", UTCDateTime),
    Index("ix_access_requests_state_requested_at", "state", "requested_at"),
)

# ------------------------------------------------------------- disposal (issue 19, part 2)

# What each retention sweep listed as disposal candidates (retention passed, not held). A
# listing, not a disposal: no custody event; a request may name "the candidates of sweep N".
retention_sweeps = Table(
    "retention_sweeps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("candidates", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
)

retention_candidates = Table(
    "retention_candidates",
    metadata,
    Column("sweep_id", Integer, ForeignKey("retention_sweeps.id"), primary_key=True),
    Column("media_id", Integer, ForeignKey("media.id"), primary_key=True),
    Column("until", UTCDateTime, nullable=False),  # when its retention ended
    Column("size", BigInteger, nullable=False),
    Column("reasons", JSON, nullable=False, default=list),
)

# Disposal requests (销毁申请): an archivist asks, a supervisor or the legal office decides,
# never the requester. Each item has its own state: dropped when it is no longer disposable
# (linked, held, marked since), undone in the grace period, disposed, or refused by the store.
disposal_requests = Table(
    "disposal_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("requested_by", String(64), ForeignKey("users.login"), nullable=False, index=True),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("sweep_id", Integer, ForeignKey("retention_sweeps.id")),  # "the candidates of"
    Column("state", String(16), nullable=False),  # waiting, approved, refused
    Column("decided_by", String(64)),
    Column("decided_at", UTCDateTime),
    Column("comment", Text),
    Column("grace_until", UTCDateTime),  # approved items wait until then
    Index("ix_disposal_requests_state_requested_at", "state", "requested_at"),
)

disposal_items = Table(
    "disposal_items",
    metadata,
    Column("request_id", Integer, ForeignKey("disposal_requests.id"), primary_key=True),
    Column("media_id", Integer, ForeignKey("media.id"), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("note", Text),  # why dropped or undone, or the store's answer
    Column("changed_at", UTCDateTime, nullable=False),
    Column("changed_by", String(200), nullable=False),
    Index("ix_disposal_items_media_id", "media_id"),
    Index("ix_disposal_items_state", "state"),
)

# The tombstone of a disposed item: its bytes are gone, what they were and who decided stay.
# The media row stays too (status 'disposed', no proxy or thumbnail), so links, the custody
# log and the replay of it still name the item.
disposal_tombstones = Table(
    "disposal_tombstones",
    metadata,
    Column("media_id", Integer, ForeignKey("media.id"), primary_key=True),
    Column("request_id", Integer, ForeignKey("disposal_requests.id"), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("ingested_at", UTCDateTime, nullable=False),
    Column("recorded_start", UTCDateTime),
    Column("recorded_end", UTCDateTime),
    Column("retention_until", UTCDateTime),  # when its retention ended
    Column("retention_reasons", JSON, nullable=False, default=list),
    Column("requested_by", String(64), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("approved_by", String(64), nullable=False),
    Column("approved_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("disposed_at", UTCDateTime, nullable=False),
    Column("disposed_by", String(200), nullable=False),
    Column("derived_left", JSON, nullable=False, default=list),  # keys still to remove
)

# ------------------------------------------------------------------- retention (issue 19)

# Important-file marks (重点文件标记, migration 0012): found at ingest in the file name or its
# metadata, or set by a person. A cleared mark loses its row; its history is in the custody
# log (MARKED events).
retention_marks = Table(
    "retention_marks",
    metadata,
    Column("media_id", Integer, ForeignKey("media.id"), primary_key=True),
    Column("source", String(16), nullable=False),  # filename, metadata or person
    Column("matched", Text, nullable=False, default=""),  # the pattern or word found
    Column("reason", Text, nullable=False, default=""),
    Column("marked_by", String(200), nullable=False),
    Column("marked_at", UTCDateTime, nullable=False),
)

# A retention class a person assigned to one record, with a reason (e.g. 无效数据).
retention_assigned = Table(
    "retention_assigned",
    metadata,
    Column("media_id", Integer, ForeignKey("media.id"), primary_key=True),
    Column("class_id", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("assigned_by", String(200), nullable=False),
    Column("assigned_at", UTCDateTime, nullable=False),
)

# Legal holds (法律保全): on items, on a case (its records now and later) or on the items a
# query matched when placed. Released holds keep their row (who, when, why).
retention_holds = Table(
    "retention_holds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("scope", String(16), nullable=False),  # media, case or query
    Column("case_number", String(64), ForeignKey("cases.number"), index=True),
    Column("query", Text),
    Column("reason", Text, nullable=False),
    Column("placed_by", String(200), nullable=False),
    Column("placed_at", UTCDateTime, nullable=False),
    Column("until", UTCDateTime),  # the hold lapses then; None: until released
    Column("released_at", UTCDateTime),
    Column("released_by", String(200)),
    Column("released_reason", Text),
    Index("ix_retention_holds_released_at", "released_at"),
)

# The records a hold covers, each with its HELD event: a case hold's grow as records are
# linked to the case; a record unlinked later stays covered until the hold is released.
retention_hold_items = Table(
    "retention_hold_items",
    metadata,
    Column("hold_id", Integer, ForeignKey("retention_holds.id"), primary_key=True),
    Column("media_id", Integer, ForeignKey("media.id"), primary_key=True),
    Column("added_at", UTCDateTime, nullable=False),
    Index("ix_retention_hold_items_media_id", "media_id", "hold_id"),
)

# The lock of each original as last set: retain-until (S3 Object Lock's date, or the local
# store's own, which refuses removal before it) and whether a legal hold is on. Only ever
# extended; a record without a row is locked store.s3.retention_days from its ingest.
retention_locks = Table(
    "retention_locks",
    metadata,
    Column("media_id", Integer, ForeignKey("media.id"), primary_key=True),
    Column("lock_until", UTCDateTime, nullable=False),
    Column("held", Boolean, nullable=False, default=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
