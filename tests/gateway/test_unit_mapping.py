"""History recorded under a merged (old) unit code adds up under the new unit in the unit-level CSV."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gateway.config import Settings
from tests.gateway.conftest import wait_for
from tests.gateway.kiosk_sim import EventFactory, Publisher


def test_old_code_history_adds_up_under_new_unit(mosquitto, gateway_factory, tmp_path: Path) -> None:
    # the bundled registry plus one mapping with a (test-only) old code that differs from the new one
    reg = Settings().registry_file.read_text(encoding="utf-8")
    reg += '\n[[unit_mapping]]\nold_name = "Xã Thử Nghiệm (test)"\nold_code = "09999"\nnew_code = "03390"\n'
    # the kiosk still configured with the old code is registered to the new office (whose unit took
    # the old one): it may speak under the old code; an unregistered one would be held
    reg += '\n[[devices]]\ndevice_id = "k-old-kiosk"\noffice_code = "03390"\ncounter = 1\n'
    path = tmp_path / "registry.toml"
    path.write_text(reg, encoding="utf-8")
    gw = gateway_factory(mosquitto.url, registry={"file": str(path)})
    day = gw.app.state.kpi.today()
    pub = Publisher(mosquitto.port)
    old = EventFactory("k-old-kiosk", "09999", 1)  # a kiosk still configured with the old code
    new = EventFactory("k03390-q1", "03390", 1)
    for i in range(1, 4):
        for e in old.visit(i, day, datetime.now(UTC), 100.0, 50.0):
            pub.event(e)
    for i in range(1, 6):
        for e in new.visit(i, day, datetime.now(UTC), 200.0, 50.0):
            pub.event(e)
    pub.flush()
    pub.close()
    wait_for(lambda: gw.stats()["accepted"] == 24, what="events stored")
    params = {"from": day.isoformat(), "to": day.isoformat()}
    unit = gw.public.get("/api/v1/kpis.csv", params={**params, "level": "unit"}).text.strip().splitlines()
    header = unit[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in unit[1:]]
    assert [(r["unit_code"], r["visits"]) for r in rows] == [("03390", "8")]
    assert abs(float(rows[0]["avg_wait_s"]) - (3 * 100 + 5 * 200) / 8) < 1e-6
    office = gw.public.get("/api/v1/kpis.csv", params={**params, "level": "office"}).text.strip().splitlines()
    assert sorted(line.split(",")[1:3] for line in office[1:]) == [["03390", "5"], ["09999", "3"]]
    days = gw.public.get("/api/v1/units/03390/kpis", params={"from": day.isoformat()}).json()
    assert [(d["day"], d["kpi"]["visits"]) for d in days] == [(day.isoformat(), 8)]
    assert gw.public.get("/api/v1/units/99999/kpis").status_code == 404
    units = gw.public.get("/api/v1/units").json()
    assert {"old_name": "Xã Thử Nghiệm (test)", "old_code": "09999", "new_code": "03390"}.items() <= next(
        m for m in units["unit_mapping"] if m["old_code"] == "09999"
    ).items()
