"""/fleet shows devices whose events are held (quarantined) in real headless Chromium.

A kiosk id not in the registry publishes its status and visit events through the real Mosquitto to the
real gateway (SQLite): the events are held, not counted. The operator must see, on a wide screen and on
a 390x844 phone, the device marked "Chưa đăng ký — sự kiện bị giữ lại" with its held count, and the
quarantine list with the office it claimed and the command an admin runs to bind it. Binding it then
clears the mark: the page shows what the gateway holds, not a fixed text.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.gateway.kiosk_sim import EventFactory, Publisher
from tests.gateway.web.conftest import OPERATOR, auth_section
from tests.gateway.web.layout import PHONE, horizontal_overflow
from tests.gateway.web.test_web_browser import TZ, login
from tests.support.wait import wait_for

ROGUE = "k03390-rogue"
HELD_LABEL = "Chưa đăng ký — sự kiện bị giữ lại (Unregistered — events held)"


def held_shown(page: Any) -> dict[str, Any]:
    return page.evaluate("""(id) => {
      const row = document.querySelector(`tbody tr[data-device="${id}"]`);
      const item = document.querySelector(`#quarantine-list li[data-device="${id}"]`);
      return {
        row: row ? row.innerText : null, rowHeld: row ? row.dataset.held || null : null,
        item: item ? item.innerText : null, itemHeld: item ? item.dataset.held : null,
        section: !document.getElementById("quarantine").hidden,
      };
    }""", ROGUE)


def test_quarantined_device_and_held_count_on_fleet(
    mosquitto, gateway_factory, page_factory, artifacts_dir: Path
) -> None:
    gw = gateway_factory(mosquitto.url, auth=auth_section())
    fac = EventFactory(ROGUE, "03390")
    pub = Publisher(mosquitto.port)
    pub.status(fac.status())
    now = datetime.now(UTC)
    day = now.astimezone(TZ).date()
    sent = []
    for no in (1, 2, 3):
        sent += fac.visit(no, day, now - timedelta(seconds=900), wait_s=600, service_s=120)
    sent.append(fac.rating(3, day, 3, now))
    for ev in sent:
        pub.event(ev)
    pub.flush()
    wait_for(lambda: [q["held_events"] for q in gw.ops.get("/api/v1/quarantine").json()] == [len(sent)],
             what=f"{len(sent)} events held")
    assert gw.public.get("/api/v1/offices/03390").json()["kpi_today"]["visits"] == 0  # held, not counted
    held = f"{len(sent)} sự kiện bị giữ"

    page, rec = page_factory(gw.base, viewport={"width": 1400, "height": 900})
    page.goto(gw.base + "/fleet")
    login(page, gw.base, *OPERATOR)
    page.wait_for_url(gw.base + "/fleet")
    wait_for(lambda: held_shown(page)["item"] is not None and held_shown(page)["row"] is not None,
             what="quarantined device shown")
    seen = held_shown(page)
    assert seen["section"] and seen["rowHeld"] == seen["itemHeld"] == str(len(sent)), seen
    assert HELD_LABEL in seen["row"] and held in seen["row"], seen["row"]
    for text in (held, "03390", f"motcua-gateway device bind --device {ROGUE} --office 03390"):
        assert text in seen["item"], (text, seen["item"])
    wait_for(lambda: "Bình Lư (03390)" in (held_shown(page)["item"] or ""), what="claimed office named")
    summary = page.locator("#summary").inner_text()
    assert summary.endswith("1 chưa đăng ký, sự kiện bị giữ (unregistered, events held)"), summary
    # only the unregistered device carries the mark, among the registered ones listed
    assert page.locator("tbody tr[data-device]").count() > 1
    assert page.locator(".held-badge").count() == 1
    page.screenshot(path=str(artifacts_dir / "web-fleet-quarantine.png"), full_page=True)

    phone, phone_rec = page_factory(gw.base, **PHONE)
    phone.goto(gw.base + "/fleet")
    login(phone, gw.base, *OPERATOR)
    phone.wait_for_url(gw.base + "/fleet")
    wait_for(lambda: held_shown(phone)["row"] is not None, what="quarantined card on the phone")
    card = phone.locator(f'tbody tr[data-device="{ROGUE}"]')
    # the device that needs action comes first
    assert phone.locator("tbody tr[data-device]").first.get_attribute("data-device") == ROGUE
    badge = card.locator(".held-badge")
    assert badge.is_visible() and HELD_LABEL in badge.inner_text() and held in badge.inner_text()
    assert badge.bounding_box()["width"] <= 390
    assert phone.locator(f'#quarantine-list li[data-device="{ROGUE}"]').is_visible()
    width, viewport = horizontal_overflow(phone)
    assert width <= viewport, f"page scrolls sideways on a phone: {width} > {viewport}"
    card.scroll_into_view_if_needed()
    phone.screenshot(path=str(artifacts_dir / "web-fleet-quarantine-phone.png"), full_page=True)

    # An admin binds it without releasing: the row's mark goes, the list says its events are still held;
    # binding with release_held counts them and the list empties.
    body = {"device_id": ROGUE, "office_code": "03390", "counter": 1}
    r = gw.admin.post("/api/v1/devices", json=body)
    assert r.status_code == 201, r.text
    page.evaluate("window.motcuaFleet.reload()")
    wait_for(lambda: held_shown(page)["rowHeld"] is None and "Đã gán" in (held_shown(page)["item"] or ""),
             what="row mark cleared, events still listed as held after binding")
    assert page.locator(f'tbody tr[data-device="{ROGUE}"] .held-badge').count() == 0
    r = gw.admin.post("/api/v1/devices", json={**body, "release_held": True})
    assert r.status_code == 201, r.text
    page.evaluate("window.motcuaFleet.reload()")
    wait_for(lambda: held_shown(page)["item"] is None and not held_shown(page)["section"],
             what="quarantine list empty after release")
    wait_for(lambda: gw.public.get("/api/v1/offices/03390").json()["kpi_today"]["visits"] == 3,
             what="released visits counted")

    pub.close()
    for r in (rec, phone_rec):
        assert r.external == [], r.external
        assert r.errors == [], r.errors
