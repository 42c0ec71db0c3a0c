"""/map and /fleet in real headless Chromium against the real gateway, Mosquitto and SQLite.

Events are published to the broker as a kiosk would (valid contract messages, paho); the pages
must show them without a reload and without any request leaving the gateway's origin.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract.codec import encode
from contract.payloads import CommandRequest, EventType, Status
from contract.topics import cmd_filter, health_topic, status_topic
from tests.gateway.conftest import wait_for
from tests.gateway.kiosk_sim import EventFactory, Publisher
from tests.gateway.web.conftest import OPERATOR, auth_section

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
WARN_S, TARGET_S = 0.8 * 1200, 1200.0  # the gateway's default [kpi] bands


def wait_class(waits: list[float]) -> str:
    """Independent expectation of the map colour for an office's waits."""
    if not waits:
        return "none"
    avg = sum(waits) / len(waits)
    return "bad" if avg > TARGET_S else "warn" if avg > WARN_S else "ok"


def publish_visits(pub: Publisher, fac: EventFactory, waits: list[float], first_no: int = 1) -> None:
    now = datetime.now(UTC)
    day = now.astimezone(TZ).date()
    for i, w in enumerate(waits):
        issued = now - timedelta(seconds=w + 60)
        for ev in fac.visit(first_no + i, day, issued, wait_s=w, service_s=30):
            pub.event(ev)
    pub.flush()


def page_until(page: Any, cond: Callable[[], Any], what: str, timeout_s: float = 60.0) -> None:
    """Poll a Python-side condition while letting Playwright work. Our Recorder routes every request
    through a Python handler, which the sync API runs only inside Playwright calls: a bare
    ``time.sleep`` poll would hold the page's own requests (e.g. a command POST) until it gives up."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(100)


def js_until(page: Any, expression: str, what: str) -> None:
    """Poll a JS expression through CDP (``wait_for_function`` would need 'unsafe-eval' under our CSP)."""
    wait_for(lambda: page.evaluate(expression), what=what)


A11Y_PROBLEMS = """() => {
  const problems = [];
  if (document.documentElement.lang !== "vi") problems.push("html lang is not vi");
  const name = (el) => (el.getAttribute("aria-label") || el.textContent || el.title || "").trim();
  for (const el of document.querySelectorAll("button, a[href], [role=button]")) {
    if (!name(el)) problems.push("unnamed control: " + el.outerHTML.slice(0, 80));
  }
  for (const el of document.querySelectorAll("input:not([type=hidden])")) {
    const labelled = el.labels && el.labels.length || el.getAttribute("aria-label");
    if (!labelled) problems.push("unlabelled input: " + el.outerHTML.slice(0, 80));
  }
  for (const el of document.querySelectorAll("img:not([alt]), svg[role=img]:not([aria-label])")) {
    problems.push("image without text: " + el.outerHTML.slice(0, 80));
  }
  for (const el of document.querySelectorAll(".leaflet-interactive[data-office]")) {
    if (el.getAttribute("tabindex") !== "0" || !el.getAttribute("aria-label")) problems.push("bad marker");
  }
  return problems;
}"""


def marker_classes(page: Any) -> dict[str, str]:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('path[data-office]')]
        .map(p => [p.dataset.office, p.dataset.cls]))""")


def test_map_offline_live_panel_and_phone(
    mosquitto, gateway_factory, page_factory, artifacts_dir: Path
) -> None:
    gw = gateway_factory(mosquitto.url)
    for code in ("03424", "03430"):  # kiosks not in the bundled registry: bound first, or they are held
        body = {"device_id": f"k{code}-q1", "office_code": code, "counter": 1}
        assert gw.admin.post("/api/v1/devices", json=body).status_code == 201
    pub = Publisher(mosquitto.port)
    # four visits at Bình Lư (a rating counts only for a known visit, once): average wait 17.5 min
    waits = {"03390": [600.0, 1500.0, 600.0, 1500.0], "03405": [300.0], "03424": [1800.0, 1500.0]}
    facs = {code: EventFactory(f"k{code}-q1", code) for code in waits}
    for code, ws in waits.items():
        publish_visits(pub, facs[code], ws)
    day = datetime.now(TZ).date()
    for no, level in enumerate((3, 2, 1, 3), start=1):
        pub.event(facs["03390"].rating(no, day, level, datetime.now(UTC)))
    pub.flush()
    wait_for(
        lambda: gw.public.get("/api/v1/offices/03424").json()["kpi_today"]["visits"] == 2,
        what="visits stored",
    )
    wait_for(lambda: gw.public.get("/api/v1/offices/03390").json()["kpi_today"]["rated"] == 4, what="ratings")

    page, rec = page_factory(gw.base, viewport={"width": 1280, "height": 860})
    page.goto(gw.base + "/")
    assert page.url == gw.base + "/map"
    js_until(page, "document.body.dataset.officesLoaded === '6'", "offices listed")
    assert page.locator("#office-list button").count() == 6
    expected = {code: wait_class(waits.get(code, [])) for code in ("03390", "03405", "03424", "03430")}
    wait_for(lambda: {c: marker_classes(page).get(c) for c in expected} == expected, what="marker colours")
    page.wait_for_selector("#live-state.on")
    js_until(page, "document.querySelectorAll('.leaflet-base-pane path').length >= 6", "base layer drawn")
    page.screenshot(path=str(artifacts_dir / "web-map.png"), full_page=True)

    # Satisfaction toggle: 03390 has 4 ratings, one "Không hài lòng" → 75 % → warn band (>= 0.75, < 0.9).
    page.get_by_label("Mức hài lòng").check()
    wait_for(lambda: marker_classes(page).get("03390") == "warn", what="satisfaction colour")
    assert marker_classes(page).get("03405") == "none"
    assert page.locator("#legend-satisfaction").is_visible()
    page.get_by_label("Thời gian chờ").check()

    # Keyboard: focus the office in the list and press Enter → the panel opens with its KPIs.
    page.locator('#office-list button[data-office="03390"]').focus()
    page.keyboard.press("Enter")
    page.wait_for_selector('#office-panel[data-office="03390"][data-visits="4"]')
    panel = page.locator("#office-panel")
    assert "Bình Lư" in panel.inner_text()
    assert page.locator('[data-kpi="avg_wait"] .value').inner_text() == "17,5 phút"  # (2x600+2x1500)/4 s
    assert page.locator('[data-kpi="satisfaction"] .value').inner_text() == "75%"
    dist = {r.get_attribute("data-level"): r.inner_text() for r in page.locator(".dist tr[data-level]").all()}
    assert set(dist) == {"1", "2", "3"} and "Rất hài lòng" in dist["3"] and "\t2\t" in dist["3"] + "\t"
    bars = page.locator("#hourly-chart rect.bar-a").all()
    assert sum(int(b.get_attribute("data-arrivals")) for b in bars) == 4
    chart_text = page.locator("#hourly-chart").inner_text()
    assert "MAE" in chart_text or "lịch sử" in chart_text  # the forecast's error (or why there is none)
    page.screenshot(path=str(artifacts_dir / "web-map-panel.png"), full_page=True)
    assert page.evaluate(A11Y_PROBLEMS) == []
    # A marker is reachable by keyboard too: focus it, Enter opens that office.
    page.locator('path[data-office="03424"]').focus()
    page.keyboard.press("Enter")
    page.wait_for_selector('#office-panel[data-office="03424"][data-visits="2"]')
    page.keyboard.press("Escape")
    assert page.locator("#office-panel").is_hidden()
    page.locator('#office-list button[data-office="03390"]').click()
    page.wait_for_selector('#office-panel[data-office="03390"][data-visits="4"]')

    # Live: a new ticket at Bình Lư and the first visit at Khun Há arrive over MQTT; no reload.
    page.evaluate("window.__sameDocument = true")
    ticket = {**facs["03390"].ticket(5, day), "waiting_ahead": 0}
    issued = facs["03390"].event(EventType.TICKET_ISSUED, ticket)
    pub.event(issued)
    publish_visits(pub, EventFactory("k03430-q1", "03430"), [120.0])
    page.wait_for_selector('#office-panel[data-office="03390"][data-visits="5"]')
    assert page.locator('[data-kpi="waiting_now"] .value').inner_text() == "1"
    wait_for(lambda: marker_classes(page).get("03430") == "ok", what="live marker colour")
    assert page.evaluate("window.__sameDocument") is True

    # Phone-sized screen: the map and the list are both usable.
    phone, phone_rec = page_factory(
        gw.base, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    phone.goto(gw.base + "/map")
    js_until(phone, "document.body.dataset.officesLoaded === '6'", "offices listed (phone)")
    assert phone.locator("#map").bounding_box()["width"] <= 390
    phone.screenshot(path=str(artifacts_dir / "web-map-phone.png"), full_page=True)

    pub.close()
    for r in (rec, phone_rec):
        assert r.external == [], f"requests left the gateway: {r.external}"
        assert r.requests and all(u.startswith(gw.base) for u in r.requests)
        assert r.errors == [], r.errors
    assert any(u.endswith("/web-static/vendor/leaflet/leaflet.js") for u in rec.requests)
    assert any("/api/v1/stream" in u for u in rec.requests)


class Responder:
    """Answers commands like a kiosk would: subscribes to its cmd topics, publishes cmd.result events."""

    def __init__(self, port: int, fac: EventFactory, pub: Publisher) -> None:
        self.fac, self.pub = fac, pub
        self.received: list[CommandRequest] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"responder-{fac.device_id}")
        subscribed = threading.Event()
        self.client.on_connect = lambda c, *_a: c.subscribe(cmd_filter(fac.office_code, fac.device_id), qos=1)
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(30), "responder did not subscribe"

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        req = CommandRequest.model_validate_json(msg.payload)
        self.received.append(req)
        ev = self.fac.event(
            EventType.CMD_RESULT,
            {
                "cmd_id": req.cmd_id,
                "name": req.name.value,
                "ok": True,
                "message": f"{req.name.value} xong (done)",
            },
        )
        self.pub.event(ev)

    def names(self) -> list[str]:
        """Command names in order of arrival, one per cmd_id (QoS 1 may deliver a command twice)."""
        seen: dict[str, str] = {}
        for r in list(self.received):
            seen.setdefault(r.cmd_id, r.name.value)
        return list(seen.values())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class KioskLink:
    """The kiosk's MQTT session with its Last Will. Keepalive 60 s like the kiosk, so a loaded machine
    cannot trip the Will early; ``cut()`` drops the TCP connection without DISCONNECT (a power cut)."""

    def __init__(self, port: int, client_id: str, will_topic: str, will: bytes) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.will_set(will_topic, will, qos=1, retain=True)
        connected = threading.Event()
        self.client.on_connect = lambda *_a: connected.set()
        self.client.connect("127.0.0.1", port, keepalive=60)
        self.client.loop_start()
        assert connected.wait(30), "kiosk link did not connect"

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(30)
        assert info.is_published(), topic

    def cut(self) -> None:
        self.client.loop_stop()
        self.client.socket().close()


POST_TIMING = """() => performance.getEntriesByType("resource").filter(e => e.name.includes("/commands"))
  .map(e => [e.name.split("/api/v1/")[1], Math.round(e.startTime), Math.round(e.responseEnd)])"""  # ms


def login(page: Any, base: str, user: str, password: str) -> None:
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("button[type=submit]")


def test_fleet_login_commands_and_last_will(
    mosquitto, gateway_factory, page_factory, artifacts_dir: Path
) -> None:
    gw = gateway_factory(mosquitto.url, auth=auth_section())
    fac = EventFactory("k03390-q1", "03390")
    offline = Status(
        device_id=fac.device_id,
        office_code=fac.office_code,
        ts=datetime.now(UTC),
        clock_synced=True,
        state="offline",
        reason="connection_lost",
        sw_version="1.0.0",
    )
    kiosk_status = status_topic(fac.office_code, fac.device_id)
    kiosk = KioskLink(mosquitto.port, fac.device_id, kiosk_status, encode(offline))
    kiosk.publish(kiosk_status, encode(fac.status()), retain=True)
    health = fac.health(cpu_temp_c=61.5, outbox_depth=4, clock_synced=False, interval_s=60.0)
    kiosk.publish(health_topic(fac.office_code, fac.device_id), encode(health))
    side = Publisher(mosquitto.port)
    responder = Responder(mosquitto.port, fac, side)

    page, rec = page_factory(gw.base, viewport={"width": 1400, "height": 900})
    page.goto(gw.base + "/fleet")
    assert page.url.startswith(gw.base + "/login?next=/fleet")
    assert page.locator("h1").inner_text().startswith("Đăng nhập")
    login(page, gw.base, OPERATOR[0], "wrong-password")
    assert "Sai tên đăng nhập hoặc mật khẩu" in page.locator("#login-error").inner_text()
    login(page, gw.base, *OPERATOR)
    page.wait_for_url(gw.base + "/fleet")
    row = page.locator('tr[data-device="k03390-q1"]')
    row.wait_for()
    wait_for(lambda: row.get_attribute("data-state") == "online", what="device online")
    # status and health are separate messages, possibly stored in separate batches: wait for both
    wanted = ("61.5 °C", "Chưa đồng bộ", "1.0.0", "fer-mx-1")
    wait_for(lambda: all(w in row.inner_text() for w in wanted), what=f"health shown {wanted}")

    # Self-test button → POST with the CSRF token → the kiosk answers → the result shows.
    row.locator('button[data-cmd="selftest"]').click()
    page.wait_for_selector('tr[data-device="k03390-q1"] .result[data-status="ok"]')
    assert responder.names() == ["selftest"]
    assert responder.received[-1].issued_by == OPERATOR[0]

    # Reset day needs the device id typed in.
    row.locator('button[data-cmd="reset_day"]').click()
    assert page.locator("#confirm-ok").is_disabled()
    page.fill("#confirm-input", "k03390-q2")
    assert page.locator("#confirm-ok").is_disabled()
    page.fill("#confirm-input", "k03390-q1")
    page.click("#confirm-ok")
    try:
        page_until(page, lambda: responder.names() == ["selftest", "reset_day"], what="reset_day sent")
    except AssertionError:
        page.screenshot(path=str(artifacts_dir / "web-fleet-failure.png"), full_page=True)
        results = page.evaluate("() => [...window.motcuaFleet.state.results.entries()]")
        raise AssertionError(f"received {responder.names()}; POSTs {page.evaluate(POST_TIMING)}; "
                             f"page results {results}; row: {row.inner_text()!r}") from None
    page.wait_for_selector('tr[data-device="k03390-q1"] .result[data-status="ok"]:has-text("Đặt lại ngày")')
    page.screenshot(path=str(artifacts_dir / "web-fleet.png"), full_page=True)
    assert page.evaluate(A11Y_PROBLEMS) == []

    # The kiosk drops off the network: the broker publishes its Last Will; the row turns offline live.
    page.evaluate("window.__sameDocument = true")
    kiosk.cut()
    wait_for(lambda: row.get_attribute("data-state") == "offline", what="offline after Last Will")
    assert "Mất kết nối (Last Will)" in row.inner_text()
    page.check("#offline-only")  # offline, and registered devices never seen ("unknown")

    def filter_matches_api() -> bool:
        api = sorted(d["device_id"] for d in gw.ops.get("/api/v1/fleet").json() if d["state"] != "online")
        shown = page.evaluate("() => [...document.querySelectorAll('tbody tr[data-device]')]"
                              ".map(r => r.dataset.device).sort()")
        return shown == api and "k03390-q1" in shown

    wait_for(filter_matches_api, what="offline filter shows exactly the devices not online")
    assert page.evaluate("window.__sameDocument") is True
    page.screenshot(path=str(artifacts_dir / "web-fleet-offline.png"), full_page=True)

    # Log out: the page is closed again.
    page.click("text=Đăng xuất")
    page.wait_for_url(gw.base + "/map")
    page.goto(gw.base + "/fleet")
    assert "/login" in page.url

    responder.close()
    side.close()
    assert rec.external == [], rec.external
    assert rec.errors == [] or all("401" in e for e in rec.errors), rec.errors
