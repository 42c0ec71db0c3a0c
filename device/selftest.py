"""Self-test: each component in turn, one pass/fail report (printed and sent as ``selftest.report``).

Buttons: the display and the voice ask the technician to press each button (``auto``: the kiosk
drives its own mock pins, for simulation/CI). LEDs and buzzer are switched and read back; the
speaker plays the chime; the printer prints a test ticket; the clock's NTP state and the broker
connection are checked; the camera if the vision module is enabled.
"""

from __future__ import annotations

import time
from typing import Any

from contract.payloads import EventType

BUTTON_TIMEOUT_S = 20.0


def _check_buttons(kiosk: Any, auto: bool) -> list[dict[str, Any]]:
    results = []
    bank = kiosk.buttons
    for name in bank.buttons:
        before = bank.pressed_count[name]
        if auto:
            pin = bank.buttons[name].pin
            time.sleep(bank.debouncer.debounce_s + 0.002)
            saved, bank.on_press = bank.on_press, lambda n: None  # count the press, do not act on it
            try:
                pin.drive_low()
                pin.drive_high()
            finally:
                bank.on_press = saved
        else:
            kiosk.selftest_prompt = f"Kiểm tra: hãy bấm nút “{name}” (press button {name})"
            saved, bank.on_press = bank.on_press, lambda n: None
            try:
                kiosk.audio.chime("selftest-prompt")
                end = time.monotonic() + BUTTON_TIMEOUT_S
                while bank.pressed_count[name] == before and time.monotonic() < end:
                    time.sleep(0.05)
            finally:
                bank.on_press = saved
        ok = bank.pressed_count[name] > before
        results.append({"name": f"button:{name}", "ok": ok, "detail": "" if ok else "no press detected"})
    kiosk.selftest_prompt = None
    return results


def run_selftest(kiosk: Any, auto: bool, cmd_id: str | None = None) -> dict[str, Any]:
    comps: list[dict[str, Any]] = []
    comps += _check_buttons(kiosk, auto)
    for name, ok, detail in kiosk.feedback.check():
        comps.append({"name": f"output:{name}", "ok": ok, "detail": detail})
    ok, detail = kiosk.audio.check()
    comps.append({"name": "speaker", "ok": ok, "detail": detail[:200]})
    if kiosk.cfg.camera_enabled:
        st = kiosk.vision.status() if kiosk.vision is not None else {"camera": "absent"}
        cam_ok = st.get("camera") in ("on", "off")
        comps.append(
            {
                "name": "camera",
                "ok": cam_ok,
                "detail": f"camera {st.get('camera')}"
                + (f": {st['last_error']}" if st.get("last_error") else ""),
            }
        )
    if kiosk.cfg.printer.kind != "none":
        ok, detail = kiosk.printer.test_page()
        comps.append({"name": "printer", "ok": ok, "detail": detail[:200]})
    synced = kiosk.clock.clock_synced()
    comps.append(
        {
            "name": "clock_sync",
            "ok": synced,
            "detail": "NTP synchronised"
            if synced
            else "clock not synchronised (timestamps flagged clock_synced=false)",
        }
    )
    end = time.monotonic() + 10
    while not kiosk.publisher.connected and time.monotonic() < end:
        time.sleep(0.1)
    comps.append(
        {
            "name": "broker",
            "ok": kiosk.publisher.connected,
            "detail": kiosk.cfg.broker.url
            if kiosk.publisher.connected
            else f"not connected: {kiosk.publisher.last_error}"[:200],
        }
    )
    for c in comps:
        c["detail"] = str(c["detail"])[:200]
    report = {"passed": all(c["ok"] for c in comps), "components": comps, "cmd_id": cmd_id}
    out = kiosk.engine.emit(EventType.SELFTEST_REPORT, report)
    kiosk.publisher.kick.set()
    report["event_ids"] = out.event_ids
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{'PASS' if c['ok'] else 'FAIL'}  {c['name']:<20} {c['detail']}" for c in report["components"]]
    verdict = "SELF-TEST PASSED (đạt)" if report["passed"] else "SELF-TEST FAILED (không đạt)"
    return "\n".join([*lines, verdict])
