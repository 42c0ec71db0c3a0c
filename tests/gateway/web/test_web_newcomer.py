"""What a newcomer sees, in real headless Chromium: map labels that do not hide each other, the 7-day
forecast as a labelled chart drawn from the API's figures, office names instead of codes, and pages
that fit a 390 px phone (``/fleet`` with its commands in reach, the kiosk's counter display).

Screenshots go to build/test-artifacts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.device.kiosk_proc import KioskProc, write_config
from tests.gateway.kiosk_sim import EventFactory, Publisher
from tests.gateway.web.conftest import OPERATOR, auth_section
from tests.gateway.web.layout import PHONE, horizontal_overflow, label_overlaps
from tests.gateway.web.test_web_browser import TZ, js_until, login, page_until, publish_visits
from tests.support.wait import wait_for

NOTICE = "Bản demo, thời gian nén ×20 <b>không phải HTML</b>"


def _publish_past_arrivals(pub: Publisher, fac: EventFactory, day, n: int) -> None:
    """n visits on a past ``day`` at 09:xx local time: history the forecast averages."""
    for i in range(n):
        issued = datetime(day.year, day.month, day.day, 9, i, tzinfo=TZ).astimezone(UTC)
        for ev in fac.visit(100 + i, day, issued, wait_s=120.0, service_s=60.0):
            pub.event(ev)
    pub.flush()


def test_map_labels_forecast_chart_and_notice(
    mosquitto, gateway_factory, page_factory, artifacts_dir: Path
) -> None:
    gw = gateway_factory(mosquitto.url, web={"notice": NOTICE})
    pub = Publisher(mosquitto.port)
    facs = {code: EventFactory(f"k{code}-q1", code) for code in ("03390", "03405", "03424")}
    for fac in facs.values():
        publish_visits(pub, fac, [300.0])
    today = datetime.now(TZ).date()
    _publish_past_arrivals(pub, facs["03390"], today - timedelta(days=6), 8)
    wait_for(lambda: gw.public.get("/api/v1/offices/03390").json()["kpi_today"]["visits"] == 1, what="visits")
    forecast = gw.public.get("/api/v1/offices/03390/kpis").json()["forecast"]["next_week"]
    expected = {d["day"]: sum(h["arrivals"] for h in d["hours"]) for d in forecast}
    assert sum(expected.values()) > 0, expected  # the past day's arrivals reach next week's same weekday

    page, rec = page_factory(gw.base, viewport={"width": 1280, "height": 860})
    page.goto(gw.base + "/map")
    js_until(page, "Number(document.body.dataset.officesLoaded) >= 3", "offices listed")
    # the notice is text (an operator's setting, never markup)
    assert page.locator("p.notice").inner_text() == NOTICE
    page.wait_for_selector('.office-label[data-place]')
    overlaps, shown = label_overlaps(page)
    page.screenshot(path=str(artifacts_dir / "web-map-labels.png"))
    assert shown >= 5 and overlaps == [], overlaps
    # a closer and a farther zoom: labels are placed again, never on top of each other
    for step in ("zoomIn", "zoomOut", "zoomOut"):
        page.evaluate(f"() => document.querySelector('.leaflet-control-zoom-{step[4:].lower()}').click()")
        page.wait_for_timeout(600)  # the zoom animation (0.25 s), then placement on zoomend
        overlaps, shown = label_overlaps(page)
        assert overlaps == [], (step, overlaps)
    # a name without room is hidden, and shows while its marker has focus (or the pointer); zoom out
    # until some names no longer fit (how far depends on the window and the placement's options)
    for _ in range(4):
        crowded = page.evaluate("() => [...document.querySelectorAll('.office-label.crowded')]"
                                ".map((e) => e.dataset.office)")
        if crowded:
            break
        page.evaluate("() => document.querySelector('.leaflet-control-zoom-out').click()")
        page.wait_for_timeout(600)
        overlaps, shown = label_overlaps(page)
        assert overlaps == [], ("zoomOut", overlaps)
    page.screenshot(path=str(artifacts_dir / "web-map-labels-zoomed-out.png"))
    assert crowded, "zoomed out four more steps, the six offices' names still all fit"
    for code in crowded:
        label = page.locator(f'.office-label[data-office="{code}"]')
        assert not label.is_visible()
        page.locator(f'path[data-office="{code}"]').focus()
        assert label.is_visible(), code
        page.locator(f'path[data-office="{code}"]').blur()
        assert not label.is_visible(), code
    labels_zoomed_out = shown
    assert labels_zoomed_out >= 1

    page.locator('#office-list button[data-office="03390"]').click()
    page.wait_for_selector("#forecast-chart .fc-day")
    assert page.locator('.office-label[data-office="03390"]').is_visible()  # the open office is named
    assert label_overlaps(page)[0] == []
    assert page.locator("#forecast-title").inner_text().startswith("Dự báo lượt khách 7 ngày tới")
    assert "7-day" in page.locator("#forecast-title .en").inner_text()
    drawn = {g.get_attribute("data-day"): float(g.get_attribute("data-total"))
             for g in page.locator("#forecast-chart .fc-day").all()}
    assert drawn == {d: round(v, 2) for d, v in expected.items()}
    # every bar fits inside the chart (the old table was clipped at the panel's edge)
    fits = page.evaluate("""() => {
      const svg = document.querySelector('#forecast-chart svg').getBoundingClientRect();
      return [...document.querySelectorAll('#forecast-chart rect')].every((r) => {
        const b = r.getBoundingClientRect();
        return b.left >= svg.left - 0.5 && b.right <= svg.right + 0.5 && b.top >= svg.top - 0.5; }); }""")
    assert fits
    page.locator("#forecast-chart").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / "web-map-forecast.png"))

    phone, phone_rec = page_factory(gw.base, **PHONE)
    phone.goto(gw.base + "/map")
    js_until(phone, "Number(document.body.dataset.officesLoaded) >= 3", "offices listed (phone)")
    phone.locator('#office-list button[data-office="03390"]').click()
    phone.wait_for_selector("#forecast-chart .fc-day")
    width, inner = horizontal_overflow(phone)
    phone.screenshot(path=str(artifacts_dir / "web-map-phone-forecast.png"), full_page=True)
    assert width <= inner, f"/map is {width} px wide in a {inner} px phone"
    pub.close()
    for r in (rec, phone_rec):
        assert r.external == [] and r.errors == [], (r.external, r.errors)


def test_fleet_on_a_phone_shows_names_and_commands(
    mosquitto, gateway_factory, page_factory, artifacts_dir: Path
) -> None:
    gw = gateway_factory(mosquitto.url, auth=auth_section())
    pub = Publisher(mosquitto.port)
    for code in ("03390", "03405"):
        fac = EventFactory(f"k{code}-q1", code)
        pub.status(fac.status())
        publish_visits(pub, fac, [60.0])
    wait_for(lambda: len(gw.ops.get("/api/v1/fleet").json()) >= 2, what="devices in the fleet")

    page, rec = page_factory(gw.base, **PHONE)
    page.goto(gw.base + "/login?next=/fleet")
    login(page, gw.base, *OPERATOR)
    page.wait_for_url(gw.base + "/fleet")
    row = page.locator('tr[data-device="k03405-q1"]')
    row.wait_for()
    page_until(page, lambda: "xã Tả Lèng" in row.inner_text(), what="office name in the fleet row")
    width, inner = horizontal_overflow(page)
    page.screenshot(path=str(artifacts_dir / "web-fleet-phone.png"), full_page=True)
    assert width <= inner, f"/fleet is {width} px wide in a {inner} px phone"
    for name in ("reload_config", "selftest", "reset_day"):
        button = row.locator(f'button[data-cmd="{name}"]')
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        assert button.is_visible() and box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= inner, (name, box)
        assert box["height"] >= 40, (name, box)  # a finger-sized target
    # the phone layout still sends commands: the confirmation dialog opens
    row.locator('button[data-cmd="reset_day"]').click()
    assert page.locator("#confirm-reset").is_visible()
    page.keyboard.press("Escape")
    page.fill("#filter", "tả lèng")  # names are searchable, not only codes
    shown = "() => [...document.querySelectorAll('tbody tr[data-device]')].map((r) => r.dataset.device)"
    page_until(page, lambda: "k03405-q1" in page.evaluate(shown) and "k03390-q1" not in page.evaluate(shown),
               what="filter by office name")
    pub.close()
    assert rec.external == [], rec.external


def test_counter_display_fits_a_phone(mosquitto, page_factory, tmp_path: Path, artifacts_dir: Path) -> None:
    cfg = write_config(tmp_path / "kiosk.toml", device_id="k03405-q1", office="03405")
    kiosk = KioskProc(cfg, mosquitto.url, tmp_path / "kiosk").start()
    try:
        for _ in range(12):
            kiosk.press("ticket")
        kiosk.press("next")
        for size, name in ((PHONE, "phone"), ({"viewport": {"width": 1280, "height": 720}}, "tv")):
            page, rec = page_factory(kiosk.base, **size)
            page.goto(kiosk.base + "/")
            page.wait_for_function("document.getElementById('serving').textContent.trim() === '0001'")
            page.wait_for_function("document.getElementById('waiting').textContent.trim() === '11'")
            width, inner = horizontal_overflow(page)
            page.screenshot(path=str(artifacts_dir / f"display-{name}.png"), full_page=True)
            assert width <= inner, f"counter display {width} px wide in a {inner} px viewport"
            serving = page.locator("#serving").bounding_box()
            assert serving["x"] >= 0 and serving["x"] + serving["width"] <= inner
            assert serving["height"] >= 60  # still the biggest thing on the screen
            assert rec.external == [], rec.external
    finally:
        kiosk.terminate()
