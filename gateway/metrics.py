"""``GET /metrics``: Prometheus exposition through prometheus_client.

A collector reads the app's state at scrape time (ingest counters of this process and of the
database, devices by state, the writer queue, live subscribers, and the broker's own queue and
drops from ``$SYS``), so nothing is counted twice and several apps in one process (tests) never
share a global registry. Names are stable; the broker family is new:

* ``motcua_broker_stored_messages`` / ``_stored_bytes``: messages the broker holds (all queues,
  retained included); a gateway that is away or slow makes it grow.
* ``motcua_broker_dropped_messages_total``: QoS 1 messages the broker dropped (queue limits) since
  it started; anything above 0 is a loss of acknowledged events (alert ``broker_dropping``).
* ``motcua_broker_stats_age_seconds``: time since the last ``$SYS`` value (absent: the broker
  publishes none, e.g. the embedded demo broker).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from gateway.store import schema as s

router = APIRouter()

_BROKER_GAUGES = (
    ("stored_messages", "motcua_broker_stored_messages", "Messages the broker holds ($SYS store count)."),
    ("stored_bytes", "motcua_broker_stored_bytes", "Payload bytes the broker holds ($SYS store bytes)."),
    ("clients_connected", "motcua_broker_clients_connected", "Clients connected to the broker."),
    (
        "clients_disconnected",
        "motcua_broker_clients_disconnected",
        "Persistent sessions whose client is away.",
    ),
    ("heap_bytes", "motcua_broker_heap_bytes", "Broker heap in use."),
)


class GatewayCollector(Collector):
    def __init__(self, state: Any) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        st = self.state
        ingest = st.ingest
        proc = ingest.snapshot()["process"] if ingest else {}
        for src, counts in (("process", proc), ("database", st.store.counters())):
            fam = CounterMetricFamily(
                f"motcua_ingest_{src}_messages", f"Messages by outcome ({src} totals).", labels=["outcome"]
            )
            for k, v in sorted(counts.items()):
                if k not in ("batches", "refused_batches"):
                    fam.add_metric([k.replace(":", "_")], float(v))
            yield fam
        with st.store.engine.connect() as conn:
            ds = s.device_status
            by_state = dict(conn.execute(select(ds.c.state, func.count()).group_by(ds.c.state)).all())
        dev = GaugeMetricFamily("motcua_devices", "Devices by state.", labels=["state"])
        for state in ("online", "offline"):
            dev.add_metric([state], float(by_state.get(state, 0)))
        yield dev
        yield GaugeMetricFamily(
            "motcua_ingest_queue_depth",
            "Messages waiting for the writer.",
            value=ingest.queue.qsize() if ingest else 0,
        )
        yield GaugeMetricFamily(
            "motcua_live_subscribers", "Live (SSE) subscribers.", value=st.live.subscriber_count
        )
        if ingest is not None:
            yield from _broker(ingest.broker_stats.snapshot())


def _broker(snap: Any) -> Iterator[Metric]:
    if snap.age_s is None:
        return
    for key, name, help_ in _BROKER_GAUGES:
        if key in snap.values:
            yield GaugeMetricFamily(name, help_, value=snap.values[key])
    if "dropped_messages" in snap.values:
        yield CounterMetricFamily(
            "motcua_broker_dropped_messages",
            "QoS 1 messages the broker dropped (queue limits) since it started.",
            value=snap.values["dropped_messages"],
        )
    yield GaugeMetricFamily(
        "motcua_broker_stats_age_seconds", "Seconds since the last $SYS value.", value=snap.age_s
    )


@router.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
def metrics(request: Request) -> Response:
    """Prometheus text format: ingest counters (this process and database totals), devices by state,
    writer queue, live subscribers, broker queue depth and drops."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(request.app.state))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
