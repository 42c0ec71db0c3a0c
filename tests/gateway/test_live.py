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
    # 120 events produced far fewer office messages (coalesced to ~2/s)
    assert len(office_msgs()) < 40
    loop.call_soon_threadsafe(main.cancel)
    t.join(10)
