"""The entrance kiosk's touch page ``/lay-so`` in real (Debian) Chromium, driving a real entrance kiosk
process of shared lines with a counter kiosk process calling from it, on real Mosquitto: a service
field, then a priority ticket (its groups stated), the ticket number with its line and counters; an
appointment code typed on the on-screen keys after the signed list arrived, and another shown as a QR
to the entrance's camera (a clip), answered on the page as if typed; a wrong code, a field the
kiosk does not have (a stale page) and a double tap each get a clear message and never a second
ticket. At the kiosk's panel (800x480, the smallest Raspberry Pi touch display) and on a 390 px phone.
Screenshots in build/test-artifacts."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.commands import public_hex
from tests.device.shared_lines import Office
from tests.device.test_appointments import write_qr_clip
from tests.device.test_ticket_page_browser import send_list
from tests.gateway.web.conftest import browser, page_factory  # noqa: F401 - the project's Playwright fixtures
from tests.gateway.web.layout import PHONE, horizontal_overflow
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow  # kiosk processes and Chromium

KIOSK_PANEL = {"viewport": {"width": 800, "height": 480}, "has_touch": True}
GAP_MS = 1000  # the door's human pace on this entrance: taps closer than this are one tap


def _font_px(page: Any, selector: str) -> float:
    return page.eval_on_selector(selector, "e => parseFloat(getComputedStyle(e).fontSize)")


def _unexpected(errors: list[str]) -> list[str]:
    """Console errors other than the refusals the test asked for (Chromium logs each 409 answer)."""
    return [e for e in errors if "status of 409 (Conflict)" not in e]


def _waiting(office: Office) -> dict[str, int]:
    return {f["code"]: f["waiting"] for f in office.entrance.status()["line"]["fields"]}


def test_entrance_touch_page_field_priority_code_and_bad_input(
        tmp_path, mosquitto, page_factory, artifacts_dir: Path):  # noqa: F811 - the fixture imported above
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)  # a loaded shared machine
    key = Ed25519PrivateKey.generate()
    now = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
    slot = min(now + timedelta(minutes=30), now.replace(hour=23, minute=59)).strftime("%H:%M")
    clip = tmp_path / "qr.avi"  # the entrance's QR camera: a clip that appears at the end of the test
    office = Office(tmp_path, mosquitto.url, {3: ["land"]}, entrance={
        "commands": {"trusted_keys": [public_hex(key)]}, "buttons": {"min_gap_ms": GAP_MS},
        "device": {"office_name": "Bộ phận Một cửa xã Bình Lư"},
        "calling": {"appointments": {"qr_camera": f"video:{clip}"}}}).start()
    try:
        office.counters[3].press("next")  # nobody waits yet; the entrance learns that counter 3 calls land
        wait_for(lambda: office.entrance.status()["broker_connected"], what="entrance connected")
        send_list(mosquitto.port, key, now.date().isoformat(),
                  [{"code": "K7P2QX", "service_field": "land", "slot": slot},
                   {"code": "QRSTUV", "service_field": "land", "slot": slot}], office="LC-LINES",
                  device="kiosk-entrance")
        wait_for(lambda: office.entrance.status()["appointments"]["booked"] == 2, what="signed list loaded")

        page, rec = page_factory(office.entrance.base, **KIOSK_PANEL)
        page.goto(office.entrance.base + "/lay-so")
        land = page.locator(".field", has_text="Đất đai")
        expect(land).to_contain_text("quầy 3")  # counter 3 calls from this line
        expect(page.locator("#office")).to_have_text("Bộ phận Một cửa xã Bình Lư")
        assert horizontal_overflow(page)[0] <= 800
        assert land.bounding_box()["y"] + land.bounding_box()["height"] <= 480  # no scrolling to find it
        assert _font_px(page, ".field span") >= 28 and _font_px(page, ".ask") >= 24  # large text
        page.screenshot(path=str(artifacts_dir / "entrance-page-home.png"))

        land.tap()
        expect(page.locator("#field-label")).to_have_text("Đất đai")
        groups = page.locator(".groups")
        for who in ("người cao tuổi", "người khuyết tật", "phụ nữ mang thai", "người có công với cách mạng"):
            expect(groups).to_contain_text(who)
        page.screenshot(path=str(artifacts_dir / "entrance-page-kind.png"))
        page.get_by_role("button", name="Lấy số ưu tiên").tap()
        expect(page.locator("#result-label")).to_have_text("U1001")
        expect(page.locator("#result-caption")).to_have_text("Số ưu tiên của bạn")
        expect(page.locator("#result-text")).to_have_text(re.compile("^Đất đai. Quầy phục vụ: 3."))
        page.screenshot(path=str(artifacts_dir / "entrance-page-ticket.png"))
        page.get_by_role("button", name="Xong").tap()

        page.get_by_role("button", name="Tôi đã đặt lịch hẹn").tap()
        for ch in "ZZZZZZ":
            page.locator("#keys button", has_text=ch).first.tap()
        page.get_by_role("button", name="Xác nhận").tap()
        expect(page.locator("#result-text")).to_contain_text("Không tìm thấy lịch hẹn hôm nay với mã ZZZZZZ")
        expect(page.locator("#result-label")).to_have_text("")
        page.screenshot(path=str(artifacts_dir / "entrance-page-wrong-code.png"))
        page.get_by_role("button", name="Thử lại").tap()
        page.get_by_role("button", name="Tôi đã đặt lịch hẹn").tap()
        for ch in "K7P2QX":
            page.locator("#keys button", has_text=ch).first.tap()
        expect(page.locator("#code")).to_have_text("K7P2QX")
        page.get_by_role("button", name="Xác nhận").tap()
        expect(page.locator("#result-label")).to_have_text("H1002")
        when = re.compile(f"^Được gọi lúc {slot} – Đất đai. Quầy phục vụ: 3.")  # the number is above
        expect(page.locator("#result-text")).to_have_text(when)
        page.screenshot(path=str(artifacts_dir / "entrance-page-appointment.png"))
        page.get_by_role("button", name="Xong").tap()

        page.wait_for_timeout(GAP_MS + 100)  # a person's pace since the last ticket
        page.locator(".field", has_text="Hộ tịch").tap()
        page.eval_on_selector("#walk-in", "b => { b.click(); b.click(); }")  # a double tap
        expect(page.locator("#result-label")).to_have_text("2001")
        assert _waiting(office) == {"land": 2, "civil": 1}  # one ticket for the double tap
        page.wait_for_timeout(GAP_MS + 100)
        both = page.evaluate("""() => Promise.all([1, 2].map(() =>
            fetch('/api/line/ticket/civil/walk_in', {method: 'POST'})
              .then(async (r) => ({status: r.status, body: await r.json()}))))""")
        assert sorted(r["status"] for r in both) == [200, 409]  # two taps at once past the page's guard
        refused = next(r["body"] for r in both if r["status"] == 409)
        assert refused["kind"] == "too_fast" and "vui lòng chờ một chút" in refused["message"]
        assert _waiting(office) == {"land": 2, "civil": 2}
        assert rec.external == [] and _unexpected(rec.errors) == [], (rec.external, rec.errors)

        phone, phone_rec = page_factory(office.entrance.base, **PHONE)

        def stale_status(route: Any) -> None:  # the page still offers a field the kiosk no longer has
            try:
                status = route.fetch().json()
            except PlaywrightError:  # the kiosk stopped at the end of the test: the poll fails as it would
                route.abort()
                return
            status["line"]["fields"].append({"code": "tax", "label": "Thuế", "waiting": 0, "counters": []})
            route.fulfill(status=200, content_type="application/json", body=json.dumps(status))

        phone.route("**/api/status", stale_status)
        phone.goto(office.entrance.base + "/lay-so")
        expect(phone.locator(".field", has_text="Thuế")).to_be_visible()
        assert horizontal_overflow(phone)[0] <= 390
        assert _font_px(phone, ".field span") >= 24
        phone.locator(".field", has_text="Thuế").tap()
        phone.get_by_role("button", name="Lấy số thường").tap()
        expect(phone.locator("#result-text")).to_contain_text("Lĩnh vực này không có ở máy cấp số")
        phone.screenshot(path=str(artifacts_dir / "entrance-page-phone-unknown-field.png"))
        phone.get_by_role("button", name="Thử lại").tap()
        phone.wait_for_timeout(GAP_MS + 100)
        phone.locator(".field", has_text="Hộ tịch").tap()
        phone.get_by_role("button", name="Lấy số thường").tap()
        expect(phone.locator("#result-label")).to_have_text("2003")
        assert horizontal_overflow(phone)[0] <= 390
        phone.screenshot(path=str(artifacts_dir / "entrance-page-phone-ticket.png"), full_page=True)
        assert phone_rec.external == [] and _unexpected(phone_rec.errors) == []

        assert _waiting(office) == {"land": 2, "civil": 3}
        refused_counts = office.entrance.status()["refused"]
        assert refused_counts.get("line_unknown_field") == 1 and refused_counts.get("too_fast", 0) >= 1
        assert office.counters[3].press("next")["called_label"] == "U1001"  # the line the page issued into
        assert office.counters[3].press("next")["called_label"] == "H1002"  # early; nobody else waits in land
        page.goto(office.entrance.base + "/")  # the entrance's own screen: the hall's display
        expect(page.locator("#serving")).to_have_text("H1002")
        expect(page.locator("#to-counter")).to_have_text("đến quầy số 3")
        expect(page.locator("#head")).to_have_text("Bảng gọi số")  # not the entrance's counter number
        expect(page.locator("#calls")).to_have_text("U1001 → quầy 3")
        expect(page.locator("#next")).to_contain_text("Hộ tịch: 3")
        assert horizontal_overflow(page)[0] <= 800
        assert page.eval_on_selector("#serving", "e => e.scrollWidth <= e.clientWidth")  # inside its column
        page.screenshot(path=str(artifacts_dir / "entrance-hall-display.png"))

        page.goto(office.entrance.base + "/lay-so")
        expect(page.locator(".field", has_text="Đất đai")).to_be_visible()
        write_qr_clip(tmp_path / "qr-writing.avi", "MOTCUA-HEN:QRSTUV").replace(clip)  # held up to the camera
        expect(page.locator("#result-label")).to_have_text("H1003")  # the page answers the QR as a typed code
        expect(page.locator("#result-caption")).to_have_text("Số hẹn của bạn")
        expect(page.locator("#result-text")).to_contain_text("Đất đai. Quầy phục vụ: 3.")
        page.screenshot(path=str(artifacts_dir / "entrance-page-qr.png"))
        phone.close()
        page.close()
    finally:
        office.stop()
