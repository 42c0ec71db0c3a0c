"""For the shared-line tests: an office with one entrance kiosk and counter kiosks, as real processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from device.line_tokens import counter_token
from hil.harness.kiosk_proc import example_table
from hil.harness.mosquitto import free_port
from tests.device.kiosk_proc import KioskProc, write_config

TOKEN = "office-lan-secret-0123456789"
FIELDS = {"land": "Đất đai", "civil": "Hộ tịch"}
OFFICE = "LC-LINES"


class Office:
    """``entrance`` owns the lines; ``counters[n]`` calls from ``fields`` of it."""

    def __init__(self, tmp: Path, broker_url: str, counters: dict[int, list[str]],
                 policy: str = "priority_first", office: str = OFFICE,
                 entrance: dict[str, dict] | None = None, entrance_counter: int = 99) -> None:
        """``entrance``: more keys of the entrance's config, merged into each section."""
        self.tmp, self.broker_url = tmp, broker_url
        self.line_port = free_port()
        self.entrance_url = f"http://127.0.0.1:{self.line_port}"
        sections: dict[str, dict] = {
            "device": {"counter": entrance_counter},
            "buttons": {"min_gap_ms": 0, "pins": example_table()["buttons"]["pins"] | {"field_civil": 20}},
            "calling": {"policy": policy, "fields": FIELDS},
            "line": {"role": "entrance", "token": TOKEN, "listen_host": "127.0.0.1",
                     "listen_port": self.line_port},
        }
        for name, values in (entrance or {}).items():
            sections[name] = sections.get(name, {}) | values
        cfg = write_config(tmp / "entrance.toml", device_id="kiosk-entrance", office=office, **sections)
        self.entrance = KioskProc(cfg, broker_url, tmp / "entrance")
        self.counters: dict[int, KioskProc] = {}
        for n, fields in counters.items():
            c = write_config(
                tmp / f"counter{n}.toml", device_id=f"kiosk-counter-{n}", office=office,
                device={"counter": n}, buttons={"min_gap_ms": 0},
                line={"role": "counter", "token": counter_token(TOKEN, n), "entrance_url": self.entrance_url,
                      "fields": fields, "timeout_s": 3.0},
            )
            self.counters[n] = KioskProc(c, broker_url, tmp / f"counter{n}")

    def start(self) -> Office:
        self.entrance.start()
        for c in self.counters.values():
            c.start()
        return self

    def ticket(self, field: str, kind: str = "walk_in") -> dict:
        r = httpx.post(f"{self.entrance.base}/api/line/ticket/{field}/{kind}", timeout=30)
        return {"status": r.status_code} | r.json()

    def redeem(self, code: str) -> dict:
        """An appointment code typed on the entrance's touch page."""
        r = httpx.post(f"{self.entrance.base}/api/appointment", json={"code": code}, timeout=30)
        return {"status": r.status_code} | r.json()

    def stop(self) -> None:
        for k in [self.entrance, *self.counters.values()]:
            k.terminate()


def typed(watcher: Any, etype: str) -> list[dict]:
    """The events of one type the watcher saw."""
    return [e for e in watcher.events() if e["type"] == etype]
