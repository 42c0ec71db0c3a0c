"""The ``rollup_kinds`` contribution: a day's live visits by (serving counter, ticket kind, service field).

Kept like the other day rollups (gateway/store/rollups.py): :func:`gateway.store.rollups.refresh`
recomputes it per office-day, and the writer adds the change of the batch's visits through
gateway/store/rollup_deltas.py, in the batch's transaction, with this same function. So the figures by
kind (gateway/store/kinds.py) outlive the ``visits`` rows that retention purges, as every other period
figure does, and cost a small SQL aggregation over any period.

Definitions (docs/gateway.md#ticket-kinds): a visit without a ``visit_kinds`` row is a walk-in of no
field; ``issued``/``called``/``served``/``no_show`` count the visits having each step; every measured
``wait_s`` enters ``wait_n``, ``wait_sum`` (quantised: sums exact in any order) and the wait histogram
(p90 within half a bucket); punctuality sums, for appointment tickets issued with a synchronised kiosk
clock, the redeem (issue) time minus the slot's start on the office's clock ``tz``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from gateway.store import schema as s
from gateway.store.rollups import bucket, quantum, serving

WALK_IN = "walk_in"
NO_FIELD = ""  # the key's value for a ticket that named no service field


def _zero() -> dict[str, Any]:
    return {c.name: 0 for c in s.rollup_kinds.c if not c.primary_key} | {"wait_sum": 0.0, "punct_sum": 0.0}


@lru_cache(maxsize=4096)
def slot_start(day: str, slot: str, tz: ZoneInfo) -> float:
    return datetime.fromisoformat(f"{day}T{slot}").replace(tzinfo=tz).timestamp()


def kind_rows(visits: list[dict[str, Any]], kinds: list[dict[str, Any]],
              tz: ZoneInfo) -> list[dict[str, Any]]:
    """rollup_kinds rows of ``visits`` (``kinds``: their visit_kinds rows; others are ignored)."""
    kind_of = {(k["office_code"], k["counter"], k["service_day"], k["ticket_no"]): k for k in kinds}
    acc: dict[tuple[str, str, int, str, str], dict[str, Any]] = defaultdict(_zero)
    for v in visits:
        if v["discarded_at"] is not None:
            continue
        k = kind_of.get((v["office_code"], v["counter"], v["service_day"], v["ticket_no"]), {})
        a = acc[(v["service_day"], v["office_code"], serving(v), k.get("kind") or WALK_IN,
                 k.get("service_field") or NO_FIELD)]
        a["visits"] += 1
        a["issued"] += v["issued_at"] is not None
        a["called"] += v["called_at"] is not None
        a["served"] += v["completed_at"] is not None
        a["no_show"] += v["no_show_at"] is not None
        if v["wait_s"] is not None:
            a["wait_n"] += 1
            a["wait_sum"] += quantum(v["wait_s"])
            a[f"wh{bucket(v['wait_s'])}"] += 1
        if k.get("slot") and k.get("issued_synced") and v["issued_at"] is not None:
            a["punct_n"] += 1
            a["punct_sum"] += quantum(v["issued_at"] - slot_start(v["service_day"], k["slot"], tz))
    return [{"service_day": d, "office_code": o, "counter": c, "kind": kind, "service_field": f, **a}
            for (d, o, c, kind, f), a in sorted(acc.items())]
