"""The kiosk's touch ticket page /lay-so in real (Debian) Chromium: the calling order explained, a
priority ticket by touch, and an appointment code typed on the on-screen keys after the signed list
arrived over real Mosquitto. Screenshot in build/test-artifacts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from contract.codec import encode
from contract.payloads import CommandRequest
from contract.topics import cmd_topic
from gateway.commands import public_hex, sign_request
from tests.device.kiosk_proc import KioskProc, write_config
from tests.device.test_display_browser import ARGS, CHROMIUM
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow  # a kiosk process and Chromium

OFFICE, DEVICE = "LC-TEST", "kiosk-door"


def send_list(port: int, key: Ed25519PrivateKey, day: str, appointments: list[dict], office: str = OFFICE,
              device: str = DEVICE) -> None:
    """The gateway's signed ``load_appointments`` to ``device``, published on the broker at ``port``."""
    req = CommandRequest(cmd_id=str(uuid.uuid4()), name="load_appointments", issued_at=datetime.now(UTC),
                         args={"service_day": day, "appointments": appointments})
    payload = encode(sign_request(req, key, office, device))
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-gateway")
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(cmd_topic(office, device, "load_appointments"), payload, qos=1).wait_for_publish(30)
    c.loop_stop()
    c.disconnect()


def test_touch_page_priority_and_typed_code(tmp_path, mosquitto, artifacts_dir: Path):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium (scripts/system-packages.sh)")
    from playwright.sync_api import expect, sync_playwright

    key = Ed25519PrivateKey.generate()
    now = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
    slot = min(now + timedelta(minutes=30), now.replace(hour=23, minute=59)).strftime("%H:%M")
    cfg = write_config(tmp_path / "k.toml", device_id=DEVICE, office=OFFICE,
                       commands={"trusted_keys": [public_hex(key)]})
    k = KioskProc(cfg, mosquitto.url, tmp_path / "d").start()
    requests: list[str] = []
    try:
        wait_for(lambda: k.status()["broker_connected"], what="kiosk connected")
        send_list(mosquitto.port, key, now.date().isoformat(),
                  [{"code": "K7P2QX", "service_field": "land", "slot": slot}])
        wait_for(lambda: k.status()["appointments"]["booked"] == 1, what="signed list loaded")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 800, "height": 1280}, has_touch=True)
            page.on("request", lambda r: requests.append(r.url))
            page.goto(k.base + "/lay-so")
            expect(page.locator("#policy")).to_contain_text("số ưu tiên (U) được gọi trước số thường",
                                                            timeout=60_000)
            expect(page.locator("#groups")).to_contain_text("Người cao tuổi")
            page.get_by_role("button", name="Lấy số ưu tiên").tap()
            expect(page.locator("#result")).to_contain_text("U0001", timeout=60_000)
            page.get_by_role("button", name="Tôi đã đặt lịch hẹn").tap()
            for ch in "K7P2QX":
                page.locator("#keys button", has_text=ch).first.tap()
            expect(page.locator("#code")).to_have_text("K7P2QX")
            page.screenshot(path=str(artifacts_dir / "kiosk-ticket-page-code.png"))
            page.get_by_role("button", name="Xác nhận").tap()
            expect(page.locator("#result")).to_contain_text(f"H0002, được gọi lúc {slot}", timeout=60_000)
            page.screenshot(path=str(artifacts_dir / "kiosk-ticket-page-redeemed.png"))
            browser.close()
        assert k.status()["appointments"] == {"booked": 0, "redeemed": 1, "no_show": 0}
        assert all(u.startswith(k.base) for u in requests), "the page must load nothing from outside"
    finally:
        k.terminate()
