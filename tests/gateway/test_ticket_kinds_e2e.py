"""Real Mosquitto, a real kiosk process with a priority button and the real gateway: the ticket kind
travels on the wire, is stored per visit, and the wait of each kind is reported separately."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.device.kiosk_proc import KioskProc, write_config
from tests.gateway.conftest import wait_for

pytestmark = pytest.mark.slow  # a gateway and a kiosk process


def test_priority_and_walk_in_waits_reach_the_gateway_by_kind(mosquitto, gateway_factory, tmp_path: Path):
    gw = gateway_factory(mosquitto.url)
    cfg = write_config(
        tmp_path / "k.toml", device_id="k03390-q1", office="03390",
        device={"counter": 1}, buttons={"pins": {**_pins(), "priority": 12}},
        calling={"policy": "priority_first", "fields": {"land": "Đất đai"}},
    )
    kiosk = KioskProc(cfg, mosquitto.url, tmp_path / "kdata").start()
    try:
        assert kiosk.press("ticket")["label"] == "0001"
        prio = kiosk.press("priority")
        assert prio["label"] == "U0002" and prio["ticket_kind"] == "priority"
        assert kiosk.press("ticket")["label"] == "0003"
        called = [kiosk.press("next")["called_label"] for _ in range(3)]
        assert called == ["U0002", "0001", "0003"]  # priority first, then by issue order
        kiosk.press("next")  # completes 0003
    finally:
        kiosk.terminate()

    def kinds() -> dict:
        body = gw.public.get("/api/v1/offices/03390/kinds").json()
        return {r["kind"]: r for r in body["by_kind"]}

    wait_for(lambda: sum(r["served"] for r in kinds().values()) == 3, what="three visits served by kind")
    got = kinds()
    assert set(got) == {"priority", "walk_in"}
    assert got["priority"]["issued"] == 1 and got["priority"]["called"] == 1
    assert got["walk_in"]["issued"] == 2 and got["walk_in"]["served"] == 2
    # the priority ticket, issued second, was called first: its wait is shorter than the walk-ins'
    assert got["priority"]["mean_wait_s"] < got["walk_in"]["mean_wait_s"]
    assert gw.public.get("/api/v1/offices/nope/kinds").status_code == 404
    assert gw.public.get("/api/v1/offices/03390/kinds", params={"day": "2026-13-01"}).status_code == 422


def _pins() -> dict[str, int]:
    from tests.device.helpers import example_table

    return dict(example_table()["buttons"]["pins"])
