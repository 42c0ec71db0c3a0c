"""Live hub messages after stored events (what the map's SSE stream relays), coalesced per office."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

from tests.gateway.conftest import wait_for
from tests.gateway.kiosk_sim import EventFactory, Publisher


def test_office_and_device_messages(mosquitto, gateway_factory) -> None:
    gw = gateway_factory(mosquitto.url)
    got: list[dict[str, Any]] = []
    loop = asyncio.new_event_loop()
    subscribed = threading.Event()

    async def collect() -> None:
        subscribed.set()
        async for m in gw.app.state.live.subscribe():
            got.append(m)

    main = loop.create_task(collect())

    def run() -> None:
        try:
            loop.run_until_complete(main)
        except asyncio.CancelledError:
            pass
        finally:
            loop.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert subscribed.wait(10)
    wait_for(lambda: gw.app.state.live.subscriber_count == 1, what="subscribed")
    f = EventFactory("k03405-q2", "03405", 2)
    pub = Publisher(mosquitto.port)
    day = gw.app.state.kpi.today()
    for i in range(1, 41):
        for e in f.visit(i, day, datetime.now(UTC), 30.0 * i, 60.0):
            pub.event(e)
    pub.health(f.health())
    pub.flush()
    pub.close()

    def office_msgs() -> list[dict[str, Any]]:
        return [m for m in list(got) if m["kind"] == "office" and m["office_code"] == "03405"]

    wait_for(
        lambda: (m := office_msgs()) and m[-1]["kpi_today"]["visits"] == 40,
        what="office update with 40 visits",
    )
    wait_for(
        lambda: any(
            m["kind"] == "device" and m["device_id"] == "k03405-q2" and m["state"] == "online"
            for m in list(got)
        ),
        what="device update",
    )
    loop.call_soon_threadsafe(main.cancel)
    t.join(10)


class _Hub:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def publish(self, m: dict[str, Any]) -> None:
        self.sent.append(m)


def test_live_updates_are_coalesced_per_office(monkeypatch) -> None:
    """Deterministic (a fake clock): at most one office message per 0.5 s, the latest figures."""
    import gateway.ingest as ing
    from gateway.config import Settings
    from gateway.store.writer import BatchOutcome

    clock = [1000.0]
    monkeypatch.setattr(ing.time, "monotonic", lambda: clock[0])

    class _Kpi:
        n = 0

        def invalidate(self, offices: Any) -> None:
            pass

        def office_today(self, code: str) -> dict[str, Any]:
            self.n += 1
            return {"visits": self.n}

    hub = _Hub()
    ingest = ing.Ingest(Settings(), store=None, live=hub, kpi=_Kpi())  # type: ignore[arg-type]
    for _ in range(10):  # ten commits for the same office within one instant
        ingest._after_commit(BatchOutcome(offices_changed={"03390"}))
        ingest._flush_live(force=False)
    assert [m["office_code"] for m in hub.sent] == ["03390"]
    clock[0] += 0.2
    ingest._after_commit(BatchOutcome(offices_changed={"03390"}))
    ingest._flush_live(force=False)
    assert len(hub.sent) == 1  # still pending
    clock[0] += 0.4
    ingest._flush_live(force=False)
    assert len(hub.sent) == 2 and hub.sent[-1]["kpi_today"] == {"visits": 2}
