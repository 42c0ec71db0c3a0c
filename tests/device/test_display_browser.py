"""The counter display in real (Debian) Chromium: live number, waiting count, rating and reason touch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.device.kiosk_proc import KioskProc, Watcher, write_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_display_follows_presses_and_takes_reason_by_touch(tmp_path, mosquitto):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium (scripts/system-packages.sh)")
    from playwright.sync_api import expect, sync_playwright

    w = Watcher(mosquitto.port)
    k = KioskProc(
        # prompts kept open longer than the defaults (60 s, reason 20 s): on a loaded machine the browser's
        # polling must not race the reason prompt's timeout
        write_config(tmp_path / "k.toml", device_id="kiosk-disp",
                     rating={"prompt_timeout_s": 300.0, "reason_timeout_s": 120.0}),
        mosquitto.url, tmp_path / "d",
    ).start()
    requests: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(k.base + "/")
            expect(page.locator("#counter")).to_have_text("2", timeout=60_000)
            k.press("ticket")
            k.press("ticket")
            expect(page.locator("#waiting")).to_have_text("2", timeout=60_000)
            k.press("next")
            expect(page.locator("#serving")).to_have_text("0001", timeout=60_000)
            expect(page.locator("#waiting")).to_have_text("1", timeout=60_000)
            expect(page.locator("#message")).to_contain_text("Mời số 0001 đến quầy số 2", timeout=60_000)
            k.press("next")  # completes 0001: its rating prompt names it
            expect(page.locator("#rating-label")).to_have_text("0001", timeout=60_000)
            expect(page.locator("#rating")).to_contain_text(
                "Mời quý khách đánh giá lượt phục vụ số 0001", timeout=60_000
            )
            pressed = k.press("rate_1")
            assert pressed["status"] == 200 and pressed.get("ok"), pressed  # not refused (pace, no prompt)
            button = page.get_by_role("button", name="Chờ quá lâu")
            expect(button).to_be_visible(timeout=60_000)
            button.click()
            expect(page.locator("#reasons")).to_be_hidden(timeout=60_000)
            page.screenshot(path=str(tmp_path / "display.png"))
            browser.close()
        w.wait_for(
            lambda: any(
                e["type"] == "rating.submitted" and e["data"]["reason"] == "waited_too_long"
                for e in w.events()
            ),
            60,
            "rating with the touched reason",
        )
        assert all(u.startswith(k.base) for u in requests), "the display must load nothing from outside"
    finally:
        k.terminate()
        w.close()
