"""Which ratings count: one per visit the gateway knows, first one wins; plausibility flags.

Rules (docs/gateway.md#integrity), decided per visit key (office, counter, service day, ticket):

* a rating counts only if its visit is known and was called or completed (and not a no-show that was
  never completed), and it comes from the device that served the visit (else ``pending``: held
  until the visit arrives, or ``wrong_device``); a rating naming no ticket is ``no_ticket`` and never
  counts; a rating whose device ``seq`` is not after the visit's first call or completion
  (``visits.served_seq``) is ``before_visit`` and never counts: ratings sent ahead for tickets not
  yet called (to be "first" when the citizen rates) would otherwise displace the citizen's;
* of the candidate ratings of one visit, the first by the device's ``seq`` (then ``ts``,
  ``event_id``) is ``counted``, the others ``duplicate`` (counted as ``duplicate_rating``);
* a visit served in under ``min_service_s`` is flagged ``short_service``, and so is its rating;
  ``burst_top_ratings`` top ratings of one counter within ``burst_window_s`` are flagged
  ``top_rating_burst`` (on a shared line, the counter that served the visit: ``visits.serving_counter``;
  judged together, three counters' genuine ratings of one line looked like one counter's farm).
  Flagged rows are kept, shown to the office head, and left out of staff
  figures until cleared.

Everything is recomputed from the stored rows of the keys a batch touched, so the outcome is a
function of the set of events, not of their order or of replays. With PostgreSQL the keys (and
their counter-days) are locked first, so two gateway processes never decide one from two halves.
Statuses only move forward (pending → counted/duplicate/wrong_device/before_visit, counted →
duplicate when an earlier press arrives late, counted → pending when the visit's no-show arrives
late), so counting entries into ``duplicate`` counts each duplicate once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, func, select, update

from gateway.config import IntegritySettings
from gateway.store import schema as s
from gateway.store.projectors import VisitKey, rows_by_key


def _lock(conn: Any, dialect: str, keys: set[VisitKey]) -> None:
    """PostgreSQL: transaction-scoped advisory locks on the visits and on their counter-days (bursts
    are decided per counter and day), all taken in one sorted statement so that no two gateway
    processes deadlock or decide one visit, or one counter's day, from two halves."""
    if dialect != "postgresql" or not keys:
        return
    names = sorted({f"{o}|{c}|{d}|{t}" for o, c, d, t in keys} | {f"{o}|{c}|{d}" for o, c, d, _t in keys})
    conn.exec_driver_sql(
        "SELECT pg_advisory_xact_lock(766469, hashtext(k)) FROM unnest(%s::text[]) AS k ORDER BY k", (names,)
    )


def _decide(visit: Any, ratings: list[Any]) -> dict[str, tuple[str, str | None]]:
    """event_id → (status, visit flag carried) for the ratings of one visit."""
    out: dict[str, tuple[str, str | None]] = {}
    if (
        visit is None
        or (visit.called_at is None and visit.completed_at is None)
        or (visit.no_show_at is not None and visit.completed_at is None)  # nobody was served
    ):
        return {r.event_id: ("pending", None) for r in ratings}
    candidates = []
    for r in ratings:
        if r.device_id != visit.device_id:
            out[r.event_id] = ("wrong_device", None)
        elif visit.served_seq is not None and r.seq is not None and r.seq <= visit.served_seq:
            out[r.event_id] = ("before_visit", None)  # sent before its visit was called
        else:
            candidates.append(r)
    candidates.sort(key=lambda r: (r.seq if r.seq is not None else 0, r.ts, r.event_id))
    for i, r in enumerate(candidates):
        out[r.event_id] = ("counted" if i == 0 else "duplicate", visit.flag)
    return out


def _counted(conn: Any, cols: list[Any], keys: set[VisitKey]) -> list[Any]:
    """The counted ratings of ``keys``, through ``ix_ratings_status`` (office, counter, day, status):
    at most one per real visit, however many other ratings name the visits."""
    r = s.ratings
    groups: dict[tuple[str, str], set[VisitKey]] = defaultdict(set)
    for k in keys:
        groups[(k[0], k[2])].add(k)
    out: list[Any] = []
    for (office, day), group in sorted(groups.items()):
        q = select(*cols).where(and_(r.c.office_code == office, r.c.service_day == day,
                                     r.c.counter.in_(sorted({k[1] for k in group})), r.c.status == "counted"))
        out.extend(x for x in conn.execute(q) if (office, x.counter, day, x.ticket_no) in group)
    return out


def reconcile(
    conn: Any,
    dialect: str,
    rules: IntegritySettings,
    visits_changed: set[VisitKey],
    rated: set[VisitKey],
    new_ratings: list[str],
) -> tuple[dict[str, int], dict[str, FlagChange]]:
    """Decide the ratings of the visits whose call, no-show or completion was just stored (all their
    ratings) and of the visits ``rated`` by ``new_ratings`` (only those and the rating counted so far:
    the visit did not change, so nothing else stored can change). Returns counter deltas
    (``duplicate_rating``) and re-flags the bursts of the counters and days involved.

    Also returns the ratings whose burst flag changed (for the rollup deltas).

    Reading only these keeps each batch's cost bounded by its own events: thousands of repeated or
    never-matched ratings of one visit are not read again by every later batch."""
    keys = visits_changed | rated
    if not keys:
        return {}, {}
    _lock(conn, dialect, keys)
    v, r = s.visits, s.ratings
    by_key: dict[VisitKey, list[Any]] = defaultdict(list)
    cols = [r.c.event_id, r.c.office_code, r.c.counter, r.c.service_day, r.c.ticket_no, r.c.device_id,
            r.c.seq, r.c.ts, r.c.status, r.c.flag]
    found = {x.event_id: x for x in rows_by_key(conn, r, cols, visits_changed)} if visits_changed else {}
    only_new = rated - visits_changed
    if only_new:
        for i in range(0, len(new_ratings), 500):  # by primary key
            for x in conn.execute(select(*cols).where(r.c.event_id.in_(new_ratings[i : i + 500]))):
                found[x.event_id] = x
        found.update((x.event_id, x) for x in _counted(conn, cols, only_new))
    for x in found.values():
        by_key[(x.office_code, x.counter, x.service_day, x.ticket_no)].append(x)
    if not by_key:  # no rating names these visits (most ticket events)
        return {}, {}
    vcols = [v.c.office_code, v.c.counter, v.c.service_day, v.c.ticket_no, v.c.device_id, v.c.called_at,
             v.c.completed_at, v.c.no_show_at, v.c.served_seq, v.c.flag]
    visits = {
        (x.office_code, x.counter, x.service_day, x.ticket_no): x
        for x in rows_by_key(conn, v, vcols, set(by_key))
    }
    duplicates = _store_decisions(conn, by_key, visits)
    spans: dict[CounterDay, tuple[float, float]] = {}
    for (office, counter, day, _t), rows in by_key.items():  # counter-days whose ratings were decided
        lo, hi = spans.get((office, counter, day), (float("inf"), float("-inf")))
        spans[(office, counter, day)] = (min(lo, *(x.ts for x in rows)), max(hi, *(x.ts for x in rows)))
    flags = _flag_bursts(conn, spans, rules)
    return ({"duplicate_rating": duplicates} if duplicates else {}), flags


CounterDay = tuple[str, int, str]


@dataclass(frozen=True, slots=True)
class FlagChange:
    """A counted rating whose burst flag changed (its visit key, the flag before and after)."""

    key: VisitKey
    old_flag: str | None
    new_flag: str | None


def _store_decisions(conn: Any, by_key: dict[VisitKey, list[Any]], visits: dict[VisitKey, Any]) -> int:
    """Decide each visit's ratings (``_decide``) and write the statuses and flags that changed;
    returns how many ratings became duplicates."""
    changes: list[dict[str, Any]] = []
    duplicates = 0
    for key, rows in by_key.items():
        decided = _decide(visits.get(key), rows)
        for x in rows:
            status, visit_flag = decided[x.event_id]
            # a burst flag stays only on a counted rating (a demoted one leaves the run: see below)
            flag = visit_flag or (x.flag if x.flag == "top_rating_burst" and status == "counted" else None)
            if (status, flag) != (x.status, x.flag):
                changes.append({"eid": x.event_id, "status": status, "flag": flag})
                duplicates += status == "duplicate" and x.status != "duplicate"
    if changes:
        r = s.ratings
        conn.execute(
            update(r).where(r.c.event_id == bindparam("eid")).values(status=bindparam("status"),
                                                                      flag=bindparam("flag")),
            changes,
        )
    return duplicates


# the rating's visit, for the counter that served it (a shared line's ratings come from its entrance)
_RATED_VISIT = s.ratings.outerjoin(s.visits, and_(
    s.visits.c.office_code == s.ratings.c.office_code, s.visits.c.counter == s.ratings.c.counter,
    s.visits.c.service_day == s.ratings.c.service_day, s.visits.c.ticket_no == s.ratings.c.ticket_no))
_SERVER = func.coalesce(s.visits.c.serving_counter, s.ratings.c.counter).label("server")


def _flag_bursts(
    conn: Any, spans: dict[CounterDay, tuple[float, float]], rules: IntegritySettings
) -> dict[str, FlagChange]:
    """Flag counted top ratings that sit in a run of ``burst_top_ratings`` within ``burst_window_s``
    at one counter and day; unflag those no longer in one (a rating demoted to duplicate). Returns
    the ratings whose flag changed (for the rollup deltas, gateway.store.rollup_deltas).

    Only ratings within one window of the span of ratings just decided can change: their runs lie
    within two windows of it, so that much is read (one query per office and day, all its counters)
    and the inner part re-flagged. Only counted ratings make a burst or carry its flag (reconcile
    drops it from a demoted one), at most one per real visit: pending or repeated ratings, however
    many, are not read."""
    r, w = s.ratings, rules.burst_window_s
    by_day: dict[tuple[str, str], dict[int, tuple[float, float]]] = defaultdict(dict)
    for (office, counter, day), span in spans.items():
        by_day[(office, day)][counter] = span
    changes: dict[str, FlagChange] = {}
    for (office, day), counters in sorted(by_day.items()):
        lo_all = min(lo for lo, _hi in counters.values())
        hi_all = max(hi for _lo, hi in counters.values())
        rows = conn.execute(
            select(r.c.event_id, r.c.counter, r.c.ticket_no, r.c.ts, r.c.level, r.c.scale, r.c.flag, _SERVER)
            .select_from(_RATED_VISIT)
            .where(and_(r.c.office_code == office, r.c.service_day == day, r.c.counter.in_(sorted(counters)),
                        r.c.ts >= lo_all - 2 * w, r.c.ts <= hi_all + 2 * w, r.c.status == "counted"))
            .order_by(r.c.counter, r.c.ts, r.c.event_id)
        ).all()
        runs: dict[tuple[int, int], list[Any]] = defaultdict(list)  # (counter, serving counter)
        for x in rows:
            lo, hi = counters[x.counter]
            if lo - 2 * w <= x.ts <= hi + 2 * w:
                runs[(x.counter, x.server)].append(x)
        for (counter, _server), mine in runs.items():
            for x, want in _burst_flags(mine, counters[counter], rules):
                changes[x.event_id] = FlagChange((office, counter, day, x.ticket_no), x.flag, want)
    if changes:
        conn.execute(update(r).where(r.c.event_id == bindparam("eid")).values(flag=bindparam("want")),
                     [{"eid": eid, "want": c.new_flag} for eid, c in sorted(changes.items())])
    return changes


def _burst_flags(
    rows: list[Any], span: tuple[float, float], rules: IntegritySettings
) -> list[tuple[Any, str | None]]:
    """(rating, flag it should have) for the ratings of one counter-day, in ts order, whose flag
    changes within one window of ``span``."""
    lo, hi, w = span[0], span[1], rules.burst_window_s
    top = [x for x in rows if x.level == x.scale and x.flag != "short_service"]
    in_burst: set[str] = set()
    n, start = rules.burst_top_ratings, 0
    for end in range(len(top)):
        while top[end].ts - top[start].ts > w:
            start += 1
        if end - start + 1 >= n:
            in_burst.update(x.event_id for x in top[start : end + 1])
    out: list[tuple[Any, str | None]] = []
    for x in rows:
        if not lo - w <= x.ts <= hi + w:
            continue
        keep = None if x.flag == "top_rating_burst" else x.flag
        want = "top_rating_burst" if x.event_id in in_burst else keep
        if want != x.flag:
            out.append((x, want))
    return out
