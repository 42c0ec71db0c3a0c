"""The text ``motcua-gateway feed status|produce`` prints (one line per fact, for an operator)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from gateway.feed import schema as fs
from gateway.feed.producer import FeedProducer
from gateway.store import Store


def feed_report(settings: Any, *, produce: bool = False) -> str:
    store = Store(settings.database_url, integrity=settings.integrity)
    lines = []
    try:
        if produce:
            p = FeedProducer(store, settings.feed, wait_target_s=settings.kpi.wait_target_s,
                             timezone=settings.kpi.timezone, min_k=settings.integrity.min_k)
            lines.append(f"produced {p.run_once()} new record(s)")
        r = fs.feed_records
        with store.engine.connect() as conn:
            count, last = conn.execute(select(func.count(), func.max(r.c.id))).one()
            marks = {t: a for t, a in conn.execute(select(fs.feed_push_state.c.target,
                                                          fs.feed_push_state.c.acked_id))}
            hub = conn.execute(select(func.count()).select_from(fs.hub_records)).scalar_one()
            backlog = {t: conn.execute(select(func.count()).where(r.c.id > a)).scalar_one()
                       for t, a in marks.items()}
        lines.append(f"feed: {'on' if settings.feed.enabled else 'off'} (source {settings.feed.source_id}); "
                     f"{count} record(s), last id {last or 0}")
        for target in ("mqtt", "https"):
            configured = settings.feed.mqtt.url if target == "mqtt" else settings.feed.https_url
            if configured or target in marks:
                lines.append(f"push {target} {configured or '(not configured)'}: acknowledged up to "
                             f"{marks.get(target, 0)}, waiting {backlog.get(target, count)}")
        counters = {k: v for k, v in store.counters().items() if k.startswith("hub:")}
        lines.append(f"hub: {'on' if settings.hub.enabled else 'off'}; {hub} office-hour(s) held; "
                     + (", ".join(f"{k[4:]} {v}" for k, v in sorted(counters.items())) or "nothing received"))
    finally:
        store.close()
    return "\n".join(lines)
