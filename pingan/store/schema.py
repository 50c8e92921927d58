"""Tables of the system of record (SQLite by default, PostgreSQL when configured).

The broker may lose its topics (the embedded one keeps them in memory); these tables
may not. Every accepted input and every state change lands here first.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

# The open site incidents, the only ones a report can join (pingan/store/incidents.py
# asks with these very predicates, so the planner knows the partial indexes below hold
# every row it wants). The radius index's own is narrower, so a search for candidates
# near a point can only use the index by position (with both usable, a fresh table's
# missing statistics made them tie, and PostgreSQL read every open incident of the
# playbook through the radius index).
OPEN_SITE = "scope = 'site' AND status <> 'resolved'"
OPEN_SITE_WITH_RADIUS = OPEN_SITE + " AND correlation_radius_m IS NOT NULL"

reports = Table(
    "reports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("source", String(32), nullable=False),  # open311, sms, operator
    Column("service_code", String(64), nullable=False),
    Column("lat", Float),
    Column("lon", Float),
    Column("address", Text),
    Column("description", Text, nullable=False, default=""),
    Column("media_url", Text),
    Column("contact", JSON, nullable=False, default=dict),  # phone/email/name, never logged
    Column("district", String(64)),
    Column("segment", String(64)),
    Column("attributes", JSON, nullable=False, default=dict),
    # For free text: {category, confidence, words}; the dispatcher sees why.
    Column("classification", JSON),
    # Set while the report waits for a dispatcher (unsure category, unknown place).
    Column("review_reason", Text),
    Column("satisfaction", Integer),  # the caller's 1-5 after resolution
    Column("located_by", String(16)),  # coordinates, gazetteer, district
    # A keyed hash of the caller's phone: duplicate folding and rate limits without
    # reading phone numbers back.
    Column("caller_hash", String(64), index=True),
    Column("incident_id", Integer, ForeignKey("incidents.id")),
    Index("ix_reports_incident", "incident_id"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("category", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("level", String(32), nullable=False),
    Column("scope", String(16), nullable=False),  # site (reports) or district (weather)
    Column("district", String(64)),
    Column("thresholds_active", Integer, nullable=False, default=0),
    Column("playbook_id", String(128), nullable=False),
    Column("playbook_version", Integer, nullable=False),
    # The playbook as it was when the incident opened: editing the file later never
    # changes what a running incident does.
    Column("playbook_snapshot", JSON, nullable=False),
    Column("lat", Float),
    Column("lon", Float),
    Column("unstaffed", Integer, nullable=False, default=0),
    # Held while a citywide red warning is in force (inhibition); a dispatcher releases.
    Column("held", Integer, nullable=False, default=0),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    # From the snapshot, so correlation finds its candidates through the indexes below
    # instead of reading every open incident (site incidents only).
    Column("correlation_radius_m", Float),
    # Partial: they hold a storm's open incidents, not years of resolved ones, and
    # PostgreSQL picks the right one even before a new table has statistics (on
    # columns only, it scanned every incident of the playbook until autovacuum had
    # analysed the table).
    Index(
        "ix_incidents_open_near",
        "playbook_id",
        "lat",
        postgresql_where=text(OPEN_SITE),
        sqlite_where=text(OPEN_SITE),
    ),
    Index(
        "ix_incidents_open_radius",
        "playbook_id",
        "correlation_radius_m",
        postgresql_where=text(OPEN_SITE_WITH_RADIUS),
        sqlite_where=text(OPEN_SITE_WITH_RADIUS),
    ),
)

incident_history = Table(
    "incident_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("from_status", String(32)),
    Column("to_status", String(32), nullable=False),
    Column("reason", Text, nullable=False),
)

# Official warnings driving an incident; 'ended' once cancelled, expired or superseded.
incident_warnings = Table(
    "incident_warnings",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("warning_id", String(200), primary_key=True),
    Column("expires_at", DateTime(timezone=True)),
    Column("state", String(16), nullable=False),  # active, ended
    Column("reason", Text, nullable=False, default=""),
)

# Every warning message received (CAP Alert/Update/Cancel or CMA signal), as normalised.
warning_messages = Table(
    "warning_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("warning_id", String(200), nullable=False, index=True),
    Column("msg_type", String(16), nullable=False),
    Column("event", String(32), nullable=False),
    Column("level", String(16), nullable=False),
    Column("districts", JSON, nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("references", JSON, nullable=False),
    Column("headline", Text, nullable=False, default=""),
    Column("source", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("warning_id", "msg_type", name="uq_warning_message"),
)

crews = Table(
    "crews",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(128), nullable=False),  # in Chinese (texts use it)
    Column("name_en", String(128), nullable=False, default=""),  # "" when it has none
    Column("leader", String(128), nullable=False, default=""),
    Column("phone", String(32), nullable=False, default=""),
    Column("skills", JSON, nullable=False),
    Column("unit", String(64), nullable=False, default=""),
    Column("home_lat", Float, nullable=False),
    Column("home_lon", Float, nullable=False),
    Column("capacity", Integer, nullable=False, default=1),
    Column("equipment", JSON, nullable=False, default=list),
    Column("segments", JSON, nullable=False, default=list),
    Column("shift", String(16), nullable=False, default="00:00-00:00"),
    Column("overrides", JSON, nullable=False, default=list),
)

# Shift changes made while running (storm call-outs, sick leave), on top of the roster
# file's; kept apart so a roster reload does not wipe them.
crew_overrides = Table(
    "crew_overrides",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("crew_id", String(64), ForeignKey("crews.id"), nullable=False, index=True),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("on_shift", Integer, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# The road segments (包路段) crews own, named as a crew's text names them.
road_segments = Table(
    "road_segments",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
)

# Supervisors per unit and the duty leader: who is told when crews are silent.
staff = Table(
    "staff",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("role", String(32), nullable=False),
    Column("unit", String(64), nullable=False, default=""),
    Column("name", String(128), nullable=False),
    Column("phone", String(32), nullable=False),
)

assignments = Table(
    "assignments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("crew_id", String(64), ForeignKey("crews.id"), nullable=False, index=True),
    Column("skill", String(64), nullable=False),
    Column("state", String(32), nullable=False),
    Column("why", Text, nullable=False, default=""),  # the choice in English
    Column("reason", JSON),  # the same as data (pingan.crews.CrewReason), for the console
    Column("ack_due_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("en_route_at", DateTime(timezone=True)),
    Column("on_scene_at", DateTime(timezone=True)),
    Column("done_at", DateTime(timezone=True)),
    Column("note", Text, nullable=False, default=""),  # e.g. why the crew declined
    Column("level", String(32), nullable=False, default="routine"),
)

# Deadlines that must fire exactly once, even across restarts: escalation steps,
# arrival reminders, supervisor digests. A timer is claimed by setting fired_at in the
# transaction that carries out its effects.
timers = Table(
    "timers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),  # escalation, arrival, arrival_late, digest
    Column("key", String(200), nullable=False, unique=True),
    Column("incident_id", Integer),
    Column("assignment_id", Integer),
    Column("payload", JSON, nullable=False, default=dict),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("fired_at", DateTime(timezone=True)),
    Index("ix_timers_due", "fired_at", "due_at"),
)

# What supervisors and the duty leader are told, bundled into digests.
staff_alerts = Table(
    "staff_alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("phone", String(32), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    Column("text", Text, nullable=False),
    Column("incident_id", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("digest_key", String(200)),  # set when bundled into a digest
)

# Transactional outbox: written in the same transaction as the state change it
# announces; the relay publishes it. Rows stay so a fresh broker can be refilled.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("topic", String(128), nullable=False),
    Column("key", String(128), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True)),
    # Where the broker put it: the relay re-publishes an unprocessed event only once
    # the consumer group has committed past this offset (it failed, not waiting).
    Column("kafka_partition", Integer),
    Column("kafka_offset", BigInteger),
    Index("ix_outbox_unpublished", "published_at", "id"),
)

# Idempotency: a consumer records each event id it has applied, in the same
# transaction as the effects, so a redelivered event is a no-op.
processed_events = Table(
    "processed_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("consumer", String(64), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

# The send ledger: one row per (purpose, recipient, channel). Its unique key is what
# makes "no crew notified twice" hold across redeliveries and restarts.
sends = Table(
    "sends",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("dedup_key", String(200), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("recipient", String(64), nullable=False),
    Column("body", Text, nullable=False),
    # pending, sent, failed, or the provider's receipt (alerts/ledger.py: PROGRESS)
    Column("status", String(32), nullable=False),
    Column("provider_id", String(128), index=True),
    Column("warning_id", Integer, index=True),  # citizen warnings: which and to whom
    Column("subscriber_id", Integer),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The notification pipeline's retry state (alerts/pipeline.py): attempts so far,
    # when a 'pending' row is due next, and when an attempt began whose outcome is not
    # yet written (set: the provider may have taken it, so look it up before sending).
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("attempt_started_at", DateTime(timezone=True)),
    UniqueConstraint("dedup_key", "channel", name="uq_sends_key_channel"),
    Index("ix_sends_due", "status", "next_attempt_at"),
    # A person's message history, newest first (alerts/history.py): by number, and
    # by subscriber for what went to their WeChat openid.
    Index("ix_sends_recipient", "recipient", "id"),
    Index("ix_sends_subscriber", "subscriber_id", "id"),
)

# Delivery receipts that came before their message's provider id was in the ledger (a
# warning chunk records its sends when the chunk is done; Twilio may report 'sent' or
# 'delivered' sooner). Applied, and deleted, when the id is written (alerts/ledger.py).
held_receipts = Table(
    "held_receipts",
    metadata,
    Column("provider_id", String(128), primary_key=True),
    Column("status", String(32), nullable=False),
    Column("error", Text),
    Column("received_at", DateTime(timezone=True), nullable=False, index=True),
)

# The local outbox channel's mailbox: what would have gone to a phone.
local_messages = Table(
    "local_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("recipient", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("entity", String(32), nullable=False),
    Column("entity_id", String(64), nullable=False),
    Column("detail", JSON, nullable=False, default=dict),
    Index("ix_audit_entity", "entity", "entity_id"),
)

# Liveness of the processes of one deployment (the worker reports here).
components = Table(
    "components",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("pid", Integer, nullable=False),
    Column("state", String(32), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


# Conditional-GET validators per feed URL, so a restart still sends If-None-Match.
feed_state = Table(
    "feed_state",
    metadata,
    Column("url", String(1000), primary_key=True),
    Column("etag", String(500)),
    Column("last_modified", String(100)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Threshold crossings in force per district, so a restart does not re-announce them.
threshold_state = Table(
    "threshold_state",
    metadata,
    Column("district", String(64), primary_key=True),
    Column("metric", String(64), primary_key=True),
    Column("window_h", Integer, primary_key=True),
    Column("op", String(4), primary_key=True),
    Column("active", Integer, nullable=False),
    Column("band", Float),
    Column("value", Float),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


# Citizens who receive warnings. District columns (not a JSON list) so audience queries
# over a million rows use an index.
subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("phone", String(32), unique=True),  # E.164
    Column("openid", String(64), unique=True),  # WeChat Official Account user
    Column("home_district", String(64), index=True),
    Column("work_district", String(64), index=True),
    Column("language", String(8), nullable=False, default="zh"),
    Column("channels", String(32), nullable=False, default="sms"),  # preference: sms,wechat
    Column("consent_source", String(64), nullable=False),
    Column("consent_at", DateTime(timezone=True), nullable=False),
    Column("opted_out_at", DateTime(timezone=True)),
)

# Warnings to citizens: drafted (by a dispatcher or a playbook), approved, sent;
# corrections point at what they correct and go to exactly its recipients.
citizen_warnings = Table(
    "citizen_warnings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event", String(32), nullable=False),
    Column("level", String(16), nullable=False),
    Column("districts", JSON, nullable=False),
    Column("template", String(64), nullable=False),
    Column("text_zh", Text, nullable=False),
    Column("text_en", Text, nullable=False),
    Column("channels", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # draft, approved, sent, cancelled
    Column("recipients", Integer, nullable=False, default=0),
    Column("drafted_by", String(128), nullable=False),
    Column("approved_by", String(128)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("approved_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
    Column("corrects", Integer),  # the warning this one updates or cancels
    Column("msg_type", String(16), nullable=False, default="Alert"),  # CAP: Alert/Update/Cancel
    Column("source_warning", String(200)),  # the official warning it relays, if any
    # Targeted by shape rather than by district: {"polygons": [[[lat, lon], ...]],
    # "circles": [[lat, lon, radius_km]]}, published as CAP <polygon>/<circle>.
    Column("area", JSON),
)


# People who log in to the console (machines use API tokens).
users = Table(
    "users",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("password", String(200), nullable=False),  # scrypt$n$r$p$salt$hash
    Column("role", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # a hash of the cookie value
    Column("username", String(64), ForeignKey("users.username"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
)
