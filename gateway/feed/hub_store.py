"""Province hub storage: accept feed records (any transport), and the period figures built from them.

:func:`accept` is the single entry for MQTT, HTTP pull and HTTPS push. A record is stored only if it
passes, in order: the contract (``FeedRecord``: types, bounds, internal consistency), the hub's
source list, the source its transport is bound to (a pulled URL's ``source``, an HTTPS push token's
``source``: without it one commune could post another's source id and replace that commune's
figures with a higher revision), the topic it came on (MQTT: ``motcua-feed/v1/<source>/<office>``
must match; the broker's ACL binds the topic to the client), the hub's own k for sentiment, the
registry (an unknown office is refused), ``[hub] source_offices`` (an office configured for another
source, or a configured source naming an office not its own: ``foreign_office``), the clock (an
hour that has not ended yet) and ownership (an office's records come from the first source that
sent it; another source claiming it is refused). Without ``source_offices`` the first source heard
owns an office, so a commune that sends first could take a neighbour's office (or one in another
province of the hub's registry): list them. Every refusal is counted as ``hub:rejected:<reason>``
in ``ingest_counters``; nothing raises to the transport, which acknowledges either way (a forged
record redelivered forever would block the queue).

Storage keeps one row per (office, hour): a higher revision replaces it (``ON CONFLICT ... WHERE
revision < excluded.revision``), an equal one is a counted duplicate, a lower one is ``stale``. So
the hub converges to each commune's latest figures whatever the order or repetition of delivery.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select

from contract.feed import WAIT_BUCKETS_S, FeedRecord
from gateway.feed import schema as fs
from gateway.feed.config import HubSettings
from gateway.store import Store
from gateway.store import schema as s

MAX_RECORD_BYTES = 16 * 1024


def row_of(rec: FeedRecord, raw: str, now: float) -> dict[str, Any]:
    sent = rec.sentiment
    row: dict[str, Any] = {
        "office_code": rec.office_code, "hour_start": int(rec.hour_start.timestamp()), "source": rec.source,
        "revision": rec.revision, "received_at": now, "record": raw,
        **{k: getattr(rec, k) for k in ("visits", "served", "no_shows", "wait_count", "wait_sum_s",
                                        "wait_over_target", "service_count", "service_sum_s",
                                        "flagged_visits", "flagged_ratings")},
        "sentiment_windows": sent.windows if sent else 0, "sentiment_visits": sent.visits if sent else 0,
        "sentiment_score_sum": sent.score_sum if sent else 0.0,
    }
    row.update({f"wait_h{i}": n for i, n in enumerate(rec.wait_histogram)})
    row.update({f"rating_{i + 1}": n for i, n in enumerate(rec.ratings_by_level)})
    return row


def _refusal(rec: FeedRecord, cfg: HubSettings, topic: tuple[str, str] | None, bound: str | None,
             offices: set[str], now: float) -> str | None:
    if cfg.sources and rec.source not in cfg.sources:
        return "unknown_source"
    if bound is not None and rec.source != bound:
        return "source_mismatch"
    if topic is not None and topic != (rec.source, rec.office_code):
        return "topic_mismatch"
    if rec.sentiment is not None and rec.sentiment.visits < max(cfg.min_k, rec.sentiment.windows * cfg.min_k):
        return "below_k"
    if rec.office_code not in offices:
        return "unknown_office"
    if _foreign(rec, cfg.source_offices):
        return "foreign_office"
    if rec.hour_start.timestamp() + 3600 > now + 600:  # senders publish closed hours only
        return "future_hour"
    return None


def _foreign(rec: FeedRecord, source_offices: dict[str, list[str]]) -> bool:
    """The office is configured for another source, or the source for other offices."""
    mine = source_offices.get(rec.source)
    if mine is not None:
        return rec.office_code not in mine
    return any(rec.office_code in offices for offices in source_offices.values())


def accept(store: Store, raw: bytes | str, cfg: HubSettings, *, topic: tuple[str, str] | None = None,
           source: str | None = None, now: float | None = None) -> str:
    """Validate and store one record; returns ``stored``, ``duplicate``, ``stale`` or
    ``rejected:<reason>`` (also counted). ``source``: the one source the transport speaks for (a
    pulled URL's, an HTTPS token's); a record naming another is ``source_mismatch``."""
    now = time.time() if now is None else now
    outcome = _accept(store, raw, cfg, topic, source, now)
    with store.engine.begin() as conn:
        store.add_counters(conn, {f"hub:{outcome}": 1})
    return outcome


def _accept(store: Store, raw: bytes | str, cfg: HubSettings, topic: tuple[str, str] | None,
            bound: str | None, now: float) -> str:
    if len(raw) > MAX_RECORD_BYTES:
        return "rejected:too_large"
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        rec = FeedRecord.model_validate_json(text)
    except (UnicodeDecodeError, ValidationError):
        return "rejected:invalid"
    offices = {o["code"] for o in store.offices()}
    reason = _refusal(rec, cfg, topic, bound, offices, now)
    if reason:
        return f"rejected:{reason}"
    h, row = fs.hub_records, row_of(rec, rec.model_dump_json(), now)  # canonical, whatever the transport
    with store.engine.begin() as conn:
        owner = conn.execute(select(h.c.source).where(h.c.office_code == rec.office_code).limit(1)).scalar()
        if owner is not None and owner != rec.source:
            return "rejected:foreign_source"
        have = conn.execute(select(h.c.revision).where(h.c.office_code == rec.office_code,
                                                       h.c.hour_start == row["hour_start"])).scalar()
        if have is not None and have >= rec.revision:
            return "duplicate" if have == rec.revision else "stale"
        stmt = store.insert(h).values(row)
        conn.execute(stmt.on_conflict_do_update(index_elements=["office_code", "hour_start"], set_=row,
                                                where=h.c.revision < stmt.excluded.revision))
    return "stored"


# ---------------------------------------------------------------------- reads (map, reports)

def hub_period(store: Store, start: float, end: float, offices: Iterable[str] | None = None
               ) -> dict[str, dict[str, Any]]:
    """Per office, the sums of every figure over hours starting in ``[start, end)`` (epoch s), plus
    ``hours`` (how many hours had a record). The period API of reports reads this for hub data."""
    h = fs.hub_records
    cols = [func.sum(h.c[name]).label(name) for name in fs.HUB_FIGURES]
    q = (select(h.c.office_code, func.count().label("hours"), *cols)
         .where(h.c.hour_start >= start, h.c.hour_start < end).group_by(h.c.office_code))
    if offices is not None:
        q = q.where(h.c.office_code.in_(list(offices)))
    with store.engine.connect() as conn:  # PostgreSQL sums integers as numeric: back to int / float
        return {r.office_code: {k: (float(v) if k.endswith(("_s", "_sum")) else int(v))
                                for k, v in r._mapping.items() if k != "office_code"}
                for r in conn.execute(q)}


def histogram_p90(sums: dict[str, Any]) -> float | None:
    """The upper bound of the histogram bucket holding the 90th percentile (None past the last bound
    is reported as the last bound: "over 2 hours")."""
    total = sums["wait_count"] or 0
    if not total:
        return None
    seen = 0
    for i, bound in enumerate(WAIT_BUCKETS_S):
        seen += sums[f"wait_h{i}"]
        if seen >= 0.9 * total:
            return float(bound)
    return float(WAIT_BUCKETS_S[-1])


def kpi_block(sums: dict[str, Any] | None, target_s: float) -> dict[str, Any]:
    """A ``gateway.kpi`` day block (the map's ``kpi_today``) from summed hub figures."""
    z = sums or {name: 0 for name in fs.HUB_FIGURES}
    rated = sum(z[f"rating_{n}"] for n in range(1, 6))
    wc = z["wait_count"]
    return {
        "visits": z["visits"], "served": z["served"], "waiting_now": 0, "no_shows": z["no_shows"],
        "avg_wait_s": z["wait_sum_s"] / wc if wc else None, "p90_wait_s": histogram_p90(z),
        "over_target_share": z["wait_over_target"] / wc if wc else None,
        "avg_service_s": z["service_sum_s"] / z["service_count"] if z["service_count"] else None,
        "p90_service_s": None, "rated": rated,
        "ratings": {str(n): z[f"rating_{n}"] for n in range(1, 6) if z[f"rating_{n}"]},
        "rating_scale": None, "not_satisfied": z["rating_1"],
        "satisfaction_rate": (rated - z["rating_1"]) / rated if rated else None,
        "sentiment_score": z["sentiment_score_sum"] / sv if (sv := z["sentiment_visits"]) else None,
        "sentiment_visits": z["sentiment_visits"],
    }


def hub_offices(store: Store, day_start: float, target_s: float) -> list[dict[str, Any]]:
    """Offices the hub has records for: source, latest hour and revision, and the day's figures."""
    h = fs.hub_records
    q = (select(h.c.office_code, h.c.source, func.max(h.c.hour_start).label("latest_hour"),
                func.count().label("hours")).group_by(h.c.office_code, h.c.source))
    with store.engine.connect() as conn:
        latest = list(conn.execute(q))
        names = {r.code: r for r in conn.execute(select(s.offices))}
    day = hub_period(store, day_start, day_start + 86400)
    out = []
    for r in sorted(latest, key=lambda r: r.office_code):
        o = names.get(r.office_code)
        out.append({"office_code": r.office_code, "name": o.name if o else "", "lat": o.lat if o else None,
                    "lon": o.lon if o else None, "source": r.source, "hours": r.hours,
                    "latest_hour": datetime.fromtimestamp(r.latest_hour, UTC).isoformat(),
                    "today": kpi_block(day.get(r.office_code), target_s)})
    return out
