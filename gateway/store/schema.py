"""Tables (SQLAlchemy Core). Times are epoch seconds (float, UTC); days are 'YYYY-MM-DD' local days.

Raw ``events`` are the source of truth, unique by ``event_id``; ``visits``, ``ratings`` and
``sentiment_windows`` are derived from them idempotently (keyed so a replay changes nothing) and
outlive raw events under the retention policy.

Integrity (docs/gateway.md#integrity): an event ``held`` (from a device not in the registry) is
stored but derives nothing until an operator binds the device and releases it; every rating is
kept with a ``status`` (only ``counted`` ones enter figures); ``flag`` marks an implausible visit
or rating (kept, out of staff figures until an office head clears it: ``flag_cleared_by/_at``);
``audit_log`` records who bound, released or cleared what, and when.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

from contract.payloads import EXPRESSION_CLASSES

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", Float, nullable=False),
    Column("description", String(200), nullable=False),
)

units = Table(
    "units",
    metadata,
    Column("code", String(16), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False, default="commune"),  # commune | ward | special
    Column("province_code", String(8), nullable=False),
    Column("province_name", String(100), nullable=False, default=""),
)

unit_mapping = Table(
    "unit_mapping",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("old_code", String(16), nullable=True),  # NULL = code not known (name recorded)
    Column("old_name", String(200), nullable=False),
    Column("new_code", String(16), ForeignKey("units.code"), nullable=False),
    UniqueConstraint("old_name", "new_code", name="uq_unit_mapping_name"),
)

offices = Table(
    "offices",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("unit_code", String(16), ForeignKey("units.code"), nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("counters", Integer, nullable=False, default=1),
)

counters = Table(
    "counters",
    metadata,
    Column("office_code", String(32), ForeignKey("offices.code"), primary_key=True),
    Column("counter", Integer, primary_key=True),
    Column("name", String(100), nullable=False, default=""),
)

devices = Table(
    "devices",
    metadata,
    Column("device_id", String(48), primary_key=True),
    Column("office_code", String(32), nullable=False),
    Column("counter", Integer, nullable=True),
    Column("registered", Boolean, nullable=False, default=True),  # False: seen on the wire, not in registry
    Column("created_at", Float, nullable=False),
    Column("bound_by", String(200), nullable=True),  # who registered it through the API/CLI
    Column("bound_at", Float, nullable=True),
)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("type", String(32), nullable=False),
    Column("device_id", String(48), nullable=False),
    Column("office_code", String(32), nullable=False),
    Column("ts", Float, nullable=False),
    Column("clock_synced", Boolean, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("boot_id", String(200), nullable=False),
    Column("mono_ms", BigInteger, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("data", JSON, nullable=False),
    Column("held", String(32), nullable=True),  # NULL = projected; "unregistered" = quarantined
    UniqueConstraint("event_id", name="uq_events_event_id"),
)
Index("ix_events_held", events.c.held, events.c.device_id)
Index("ix_events_received", events.c.received_at)
Index("ix_events_device_seq", events.c.device_id, events.c.seq)

visits = Table(
    "visits",
    metadata,
    Column("office_code", String(32), primary_key=True),
    Column("counter", Integer, primary_key=True),
    Column("service_day", String(10), primary_key=True),
    Column("ticket_no", Integer, primary_key=True),
    Column("device_id", String(48), nullable=True),
    Column("label", String(16), nullable=True),
    Column("issued_at", Float, nullable=True),
    Column("called_at", Float, nullable=True),
    Column("completed_at", Float, nullable=True),
    Column("no_show_at", Float, nullable=True),
    Column("discarded_at", Float, nullable=True),  # queue.reset dropped it while waiting
    Column("wait_s", Float, nullable=True),
    Column("service_s", Float, nullable=True),
    Column("officer_id", String(200), nullable=True),
    Column("recalls", Integer, nullable=True),
    Column("flag", String(32), nullable=True),  # short_service
    Column("flag_cleared_by", String(200), nullable=True),
    Column("flag_cleared_at", Float, nullable=True),
    # the device seq of the visit's first call (or completion): a rating sent before it never counts
    Column("served_seq", BigInteger, nullable=True),
    # shared lines (schema v9): the counter that called the ticket (the wire's ``serving_counter``);
    # ``counter`` is then the entrance kiosk's line number, kept in the key so every event of the visit
    # meets one row. Per-counter figures read serving_counter when set (gateway.store.rollups.serving).
    Column("serving_counter", Integer, nullable=True),
)
Index("ix_visits_day", visits.c.service_day, visits.c.office_code)

ratings = Table(
    "ratings",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("office_code", String(32), nullable=False),
    Column("counter", Integer, nullable=False),
    Column("device_id", String(48), nullable=False),
    Column("service_day", String(10), nullable=False),
    Column("ticket_no", Integer, nullable=True),
    Column("ts", Float, nullable=False),
    Column("level", Integer, nullable=False),
    Column("scale", Integer, nullable=False),
    Column("reason", String(32), nullable=True),
    Column("officer_id", String(200), nullable=True),
    Column("seq", BigInteger, nullable=True),  # the device's seq: the first rating of a visit wins
    # counted | duplicate | pending (visit not known or not called yet) | wrong_device | no_ticket
    Column("status", String(16), nullable=False, default="pending"),
    Column("flag", String(32), nullable=True),  # short_service | top_rating_burst
    Column("flag_cleared_by", String(200), nullable=True),
    Column("flag_cleared_at", Float, nullable=True),
)
Index("ix_ratings_day", ratings.c.service_day, ratings.c.office_code)
# counted ratings of a counter-day (rating rules, bursts) without reading the repeated or pending ones
Index("ix_ratings_status", ratings.c.office_code, ratings.c.counter, ratings.c.service_day, ratings.c.status,
      ratings.c.ts)
Index("ix_ratings_visit", ratings.c.office_code, ratings.c.counter, ratings.c.service_day, ratings.c.ticket_no)  # noqa: E501

sentiment_windows = Table(
    "sentiment_windows",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("office_code", String(32), nullable=False),
    Column("counter", Integer, nullable=False),
    Column("device_id", String(48), nullable=False),
    Column("service_day", String(10), nullable=False),
    Column("window_start", Float, nullable=False),
    Column("window_end", Float, nullable=False),
    Column("visits", Integer, nullable=False),
    Column("k", Integer, nullable=False),
    Column("frames", Integer, nullable=False),
    Column("score", Float, nullable=False),
    Column("class_shares", JSON, nullable=False),
)
Index("ix_sentiment_day", sentiment_windows.c.service_day, sentiment_windows.c.office_code)

device_status = Table(
    "device_status",
    metadata,
    Column("device_id", String(48), primary_key=True),
    Column("office_code", String(32), nullable=False),
    Column("state", String(16), nullable=False),  # online | offline
    Column("since", Float, nullable=False),
    Column("reason", String(64), nullable=False),  # connected | shutdown | connection_lost | no_health
    Column("last_seen", Float, nullable=False),
    Column("sw_version", String(200), nullable=True),
    Column("last_selftest", JSON, nullable=True),
    Column("last_started", JSON, nullable=True),
)

health_latest = Table(
    "health_latest",
    metadata,
    Column("device_id", String(48), primary_key=True),
    Column("office_code", String(32), nullable=False),
    Column("received_at", Float, nullable=False),
    Column("ts", Float, nullable=False),
    Column("clock_synced", Boolean, nullable=False),
    Column("cpu_temp_c", Float, nullable=True),
    Column("outbox_depth", Integer, nullable=False),
    Column("interval_s", Float, nullable=False),
    Column("sw_version", String(200), nullable=False),
    Column("last_error", String(200), nullable=True),
    Column("data", JSON, nullable=False),
)

commands = Table(
    "commands",
    metadata,
    Column("cmd_id", String(36), primary_key=True),
    Column("device_id", String(48), nullable=False),
    Column("office_code", String(32), nullable=False),
    Column("name", String(32), nullable=False),
    Column("args", JSON, nullable=False),
    Column("issued_at", Float, nullable=False),
    Column("issued_by", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # sent | ok | failed | publish_failed
    Column("result", JSON, nullable=True),
    Column("result_at", Float, nullable=True),
)

ingest_counters = Table(
    "ingest_counters",
    metadata,
    Column("name", String(64), primary_key=True),  # accepted | duplicates | rejected:<reason>
    Column("count", BigInteger, nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", String(48), nullable=False),
    Column("office_code", String(32), nullable=False),
    Column("kind", String(32), nullable=False),  # offline | outbox_growing | clock_unsynced | temp_high
    Column("opened_at", Float, nullable=False),
    Column("closed_at", Float, nullable=True),
    Column("message", String(500), nullable=False),
    Column("delivered", Boolean, nullable=False, default=False),
)
Index("ix_alerts_open", alerts.c.device_id, alerts.c.kind, alerts.c.closed_at)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(32), nullable=False),  # bind_device | release_held | clear_flag
    Column("office_code", String(32), nullable=True),
    Column("target", JSON, nullable=False),
)

# ---------------------------------------------------------------------------- rollups (schema v4)
# Day aggregates kept current at ingest by gateway.store.rollups, in the writer's transaction: an
# office's day is recomputed from its derived rows whenever anything of it changes, so a rollup row
# always equals a recomputation from ``visits``/``ratings``/``sentiment_windows`` (docs/gateway.md#rollups).

# Wait and service-time histogram: 1-minute buckets (lower edge excluded) up to 60 min, then 60-90,
# 90-120, 120-180, 180-240 min and one open bucket beyond. A p90 read from it is the bucket's
# midpoint: within 30 s of the exact nearest-rank p90 below 60 minutes (half the bucket's width above).
HIST_EDGES_S: tuple[float, ...] = (*(60.0 * m for m in range(61)), 5400.0, 7200.0, 10800.0, 14400.0)
HIST_BUCKETS = len(HIST_EDGES_S)  # bucket i = (edge i, edge i+1]; the last is open
RATING_LEVELS = range(1, 6)
EXPRESSION_COLUMNS = EXPRESSION_CLASSES  # the wire contract's classes, one column each


def _int(name: str) -> Column:
    return Column(name, Integer, nullable=False, default=0)


rollup_day = Table(
    "rollup_day",
    metadata,
    Column("service_day", String(10), primary_key=True),
    Column("office_code", String(32), primary_key=True),
    Column("counter", Integer, primary_key=True),
    Column("officer_id", String(200), primary_key=True),  # '' = no officer recorded on the visit
    _int("visits"), _int("served"), _int("waiting"), _int("no_shows"),
    _int("wait_n"), Column("wait_sum", Float, nullable=False, default=0.0),
    _int("service_n"), Column("service_sum", Float, nullable=False, default=0.0),
    *(_int(f"wh{i}") for i in range(HIST_BUCKETS)),
    *(_int(f"sh{i}") for i in range(HIST_BUCKETS)),
    _int("flagged_visits"),  # live visits flagged as implausible, not cleared: out of staff figures
    _int("staff_served"), _int("staff_wait_n"), Column("staff_wait_sum", Float, nullable=False, default=0.0),
    _int("staff_service_n"), Column("staff_service_sum", Float, nullable=False, default=0.0),
    *(_int(f"r{i}") for i in RATING_LEVELS),  # counted ratings by level
    *(_int(f"rf{i}") for i in RATING_LEVELS),  # ... of which flagged, not cleared (out of staff figures)
    _int("scale5"),  # counted ratings given on a 5-level scale (the others on 3 levels)
)
Index("ix_rollup_day_office", rollup_day.c.office_code, rollup_day.c.service_day)

rollup_hours = Table(
    "rollup_hours",
    metadata,
    Column("service_day", String(10), primary_key=True),
    Column("office_code", String(32), primary_key=True),
    Column("counter", Integer, primary_key=True),
    Column("hour", Integer, primary_key=True),  # local hour of arrival (issued, else called)
    _int("arrivals"), _int("wait_n"), Column("wait_sum", Float, nullable=False, default=0.0),
)
Index("ix_rollup_hours_office", rollup_hours.c.office_code, rollup_hours.c.service_day)

rollup_sentiment = Table(
    "rollup_sentiment",
    metadata,
    Column("service_day", String(10), primary_key=True),
    Column("office_code", String(32), primary_key=True),
    Column("counter", Integer, primary_key=True),
    _int("windows"), _int("visits"),  # only k-anonymous windows (k and visits >= integrity.min_k)
    Column("score_sum", Float, nullable=False, default=0.0),  # score × visits
    *(Column(f"cs_{c}", Float, nullable=False, default=0.0) for c in EXPRESSION_COLUMNS),  # share × visits
)
Index("ix_rollup_sentiment_office", rollup_sentiment.c.office_code, rollup_sentiment.c.service_day)

rollup_reasons = Table(
    "rollup_reasons",
    metadata,
    Column("service_day", String(10), primary_key=True),
    Column("office_code", String(32), primary_key=True),
    Column("counter", Integer, primary_key=True),
    Column("reason", String(32), primary_key=True),
    _int("n"),  # counted "Không hài lòng" ratings giving this reason
)
Index("ix_rollup_reasons_office", rollup_reasons.c.office_code, rollup_reasons.c.service_day)

rollup_kinds = Table(  # schema v9: ticket kinds and service fields (gateway/store/kind_rollup.py)
    "rollup_kinds",
    metadata,
    Column("service_day", String(10), primary_key=True),
    Column("office_code", String(32), primary_key=True),
    Column("counter", Integer, primary_key=True),  # the serving counter, as in rollup_day
    Column("kind", String(16), primary_key=True),  # walk_in | priority | appointment
    Column("service_field", String(32), primary_key=True),  # '' = the ticket named no field
    _int("visits"),  # live visits (not discarded by a queue reset)
    _int("issued"), _int("called"), _int("served"), _int("no_show"),
    _int("wait_n"), Column("wait_sum", Float, nullable=False, default=0.0),  # every measured wait_s
    *(_int(f"wh{i}") for i in range(HIST_BUCKETS)),
    # appointment tickets issued with a synchronised clock: redeem (issue) time − the slot's local start
    _int("punct_n"), Column("punct_sum", Float, nullable=False, default=0.0),
)
Index("ix_rollup_kinds_office", rollup_kinds.c.office_code, rollup_kinds.c.service_day)

ROLLUP_TABLES = (rollup_day, rollup_hours, rollup_sentiment, rollup_reasons, rollup_kinds)

# ---------------------------------------------------------------------------- month rollups (schema v8)
# The sums of the day rollups over a calendar month, same keys with ``month`` (its first day,
# 'YYYY-MM-01') for ``service_day``: a year of a province reads 12 rows per counter and officer, not
# ~250 (gateway.store.rollup_months keeps them in the writer's transaction; periods.py reads them).


def _month_of(day_table: Table, name: str) -> Table:
    cols = [Column("month", String(10), primary_key=True)]  # first day of the month, 'YYYY-MM-01'
    cols += [c._copy() for c in day_table.c if c.name != "service_day"]
    table = Table(name, metadata, *cols)
    Index(f"ix_{name}_office", table.c.office_code, table.c.month)
    return table


rollup_month = _month_of(rollup_day, "rollup_month")
rollup_month_sentiment = _month_of(rollup_sentiment, "rollup_month_sentiment")
rollup_month_reasons = _month_of(rollup_reasons, "rollup_month_reasons")
MONTH_OF = {rollup_day: rollup_month, rollup_sentiment: rollup_month_sentiment,
            rollup_reasons: rollup_month_reasons}  # day table → its month table (no hours: by day only)
