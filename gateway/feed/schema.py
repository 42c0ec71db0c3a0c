"""Tables of the upward feed and the province hub (their own ``MetaData``, created by migration v6).

Why a migration step of their own rather than tables in ``gateway.store.schema``: step 1 creates
every table of that module's metadata, so a table added there would exist on new databases before
step 6 ran and be missing on old ones; with its own metadata, step 6 is the one place these tables
come from (``create_all(checkfirst=True)``: additive, idempotent, independent of steps 4 and 5).

* ``feed_records``: the commune side's append-only log of produced records. ``id`` is the pull
  cursor and the push order; a row is never updated (a change is a new row with ``revision + 1``).
  ``record`` is the exact JSON served and pushed, so every resend is byte-identical.
* ``feed_push_state``: per push target, the highest ``feed_records.id`` the upstream acknowledged
  (PUBACK or HTTP 2xx). Together with the log this is the outbox: everything above the mark is
  waiting, in id order, and the mark moves only after an acknowledgement.
* ``hub_records``: the hub side, one row per (office, hour), the highest revision received; the
  additive figures are columns so period figures are one ``SUM`` (``gateway.feed.hub_store``).
* ``hub_pull_state``: per pulled commune feed (its URL), the cursor after the last stored page.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from contract.feed import WAIT_BUCKETS_S

metadata = MetaData()
_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite: INTEGER PRIMARY KEY is the rowid

feed_records = Table(
    "feed_records",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("office_code", String(32), nullable=False),
    Column("hour_start", BigInteger, nullable=False),  # epoch seconds, UTC, on the hour
    Column("revision", Integer, nullable=False),
    Column("produced_at", Float, nullable=False),
    Column("digest", String(64), nullable=False),  # sha256 of the figures (what a revision changes)
    Column("record", Text, nullable=False),  # the contract.feed.FeedRecord as sent
    UniqueConstraint("office_code", "hour_start", "revision", name="uq_feed_records_hour_rev"),
)
Index("ix_feed_records_hour", feed_records.c.office_code, feed_records.c.hour_start)

feed_push_state = Table(
    "feed_push_state",
    metadata,
    Column("target", String(200), primary_key=True),  # "mqtt" | "https"
    Column("acked_id", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# the additive figures of a record as columns (wait_h<i>: histogram bucket i; rating_<n>: level n)
HUB_FIGURES = ("visits", "served", "no_shows", "wait_count", "wait_sum_s", "wait_over_target",
               *(f"wait_h{i}" for i in range(len(WAIT_BUCKETS_S) + 1)), "service_count", "service_sum_s",
               *(f"rating_{n}" for n in range(1, 6)), "flagged_visits", "flagged_ratings",
               "sentiment_windows", "sentiment_visits", "sentiment_score_sum")

hub_records = Table(
    "hub_records",
    metadata,
    Column("office_code", String(32), primary_key=True),
    Column("hour_start", BigInteger, primary_key=True),
    Column("source", String(64), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("received_at", Float, nullable=False),
    *(Column(name, Float if name.endswith(("_s", "_sum")) else BigInteger, nullable=False)
      for name in HUB_FIGURES),
    Column("record", Text, nullable=False),
)
Index("ix_hub_records_hour", hub_records.c.hour_start)

hub_pull_state = Table(
    "hub_pull_state",
    metadata,
    Column("url", String(500), primary_key=True),
    Column("cursor", String(100), nullable=False),
    Column("updated_at", Float, nullable=False),
)


def create_tables(conn: Connection) -> None:
    """Migration step 6 (idempotent: creates only what is missing)."""
    metadata.create_all(conn, checkfirst=True)
