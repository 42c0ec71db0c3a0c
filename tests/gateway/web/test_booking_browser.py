"""The public booking page in headless Chromium on a phone viewport: a citizen books, sees the code and
a QR that OpenCV reads back from the screenshot, is asked for consent only if a phone is given,
and cancels. Nothing is loaded from outside; no horizontal scrolling. Screenshots in build/test-artifacts."""

from __future__ import annotations

from pathlib import Path

import cv2

from gateway.booking import store as bs
from tests.gateway.booking.test_booking_api import OFFICE, booking_section
from tests.gateway.web.layout import PHONE

NO_SIDEWAYS = "() => document.documentElement.scrollWidth <= window.innerWidth"


def test_citizen_books_on_a_phone_and_cancels(mosquitto, gateway_factory, page_factory, artifacts_dir: Path):
    gw = gateway_factory(mosquitto.url, booking=booking_section(capacity=2))
    page, rec = page_factory(gw.base, **PHONE)
    page.goto(f"{gw.base}/dat-lich")
    page.select_option("#office", OFFICE)
    page.get_by_role("button", name="Tiếp tục").click()
    page.select_option("#field", "land")
    page.select_option("#day", index=3)  # a day ahead: every slot is still open
    page.get_by_role("button", name="Xem giờ còn trống").click()
    assert page.locator(".slot").count() == 14 and "còn 2" in page.locator(".slot").first.inner_text()
    assert page.evaluate(NO_SIDEWAYS)
    page.screenshot(path=str(artifacts_dir / "booking-phone-slots.png"), full_page=True)

    page.locator(".slot").nth(1).click()
    page.locator("details.phone summary").click()
    assert "Thời gian lưu" in page.locator("#phone-notice").inner_text()
    page.fill("#phone", "0912345678")
    page.get_by_role("button", name="Đặt lịch").click()  # a phone without consent is refused
    assert "đồng ý" in page.locator(".error").inner_text()
    page.screenshot(path=str(artifacts_dir / "booking-phone-consent.png"), full_page=True)

    page.locator(".slot").nth(1).click()
    page.locator("details.phone summary").click()
    page.fill("#phone", "")  # the citizen prefers to give nothing: the booking is still valid
    page.get_by_role("button", name="Đặt lịch").click()
    page.wait_for_url("**/dat-lich/ma/*")
    code = page.locator(".code").inner_text().strip()
    assert len(code) == 6 and "08:00" in page.locator("dl").inner_text()
    assert page.evaluate(NO_SIDEWAYS)
    shot = artifacts_dir / "booking-phone-code.png"
    page.screenshot(path=str(shot), full_page=True)
    text, _pts, _ = cv2.QRCodeDetector().detectAndDecode(cv2.imread(str(shot)))
    assert text == f"MOTCUA-HEN:{code}"  # the QR on the screen is what the kiosk camera will read
    engine = gw.app.state.store.engine
    assert [a["code"] for a in bs.day_list(engine, OFFICE, bs.find(engine, code).day)] == [code]

    page.get_by_role("button", name="Huỷ lịch này").click()
    assert f"Đã huỷ lịch hẹn {code}" in page.locator("h2").inner_text()
    page.screenshot(path=str(artifacts_dir / "booking-phone-cancelled.png"), full_page=True)
    assert bs.find(engine, code).cancelled and bs.day_list(engine, OFFICE, bs.find(engine, code).day) == []
    assert rec.external == []
    assert all("status of 422" in e for e in rec.errors), rec.errors  # only the refused consent form
