"""Self-test: each component in turn, one pass/fail report (printed and sent as ``selftest.report``).

Buttons: the display, the voice and the terminal (``say``) ask the technician to press each button,
with the time left; ``auto`` drives the kiosk's own mock pins (simulation/CI). LEDs and buzzer are
switched and read back; the speaker plays the chime; the printer prints a test ticket stamped with
the kiosk's local time (``device.timezone``, like real tickets, never UTC); the clock's NTP state and
the broker connection are checked; the camera if the vision module is enabled. Each result is said
as soon as it is known, so a technician at a terminal sees progress, not silence.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from contract.payloads import EventType

BUTTON_TIMEOUT_S = 20.0
REMIND_EVERY_S = 5.0
Say = Callable[[str], None]


def _quiet(_: str) -> None:
    """Default ``say`` when the self-test runs as a remote command (nobody at a terminal)."""


def _press_auto(bank: Any, name: str) -> None:
    pin = bank.buttons[name].pin
    time.sleep(bank.debouncer.debounce_s + 0.002)
    saved, bank.on_press = bank.on_press, lambda n: None  # count the press, do not act on it
    try:
        pin.drive_low()
        pin.drive_high()
    finally:
        bank.on_press = saved


def _wait_press(kiosk: Any, name: str, before: int, say: Say) -> None:
    bank = kiosk.buttons
    prompt = f"Kiểm tra: hãy bấm nút “{name}” (press button {name})"
    kiosk.selftest_prompt = prompt
    say(f"  {prompt} — {BUTTON_TIMEOUT_S:.0f} s")
    saved, bank.on_press = bank.on_press, lambda n: None
    try:
        kiosk.audio.chime("selftest-prompt")
        start = time.monotonic()
        next_remind = start + REMIND_EVERY_S
        while bank.pressed_count[name] == before:
            now = time.monotonic()
            if now - start >= BUTTON_TIMEOUT_S:
                break
            if now >= next_remind:
                say(f"  … đang chờ nút “{name}” / waiting for {name}: "
                    f"còn {BUTTON_TIMEOUT_S - (now - start):.0f} s left")
                next_remind += REMIND_EVERY_S
            time.sleep(0.05)
    finally:
        bank.on_press = saved


def _check_buttons(kiosk: Any, auto: bool, say: Say) -> list[dict[str, Any]]:
    results = []
    bank = kiosk.buttons
    for name in bank.buttons:
        before = bank.pressed_count[name]
        if auto:
            _press_auto(bank, name)
        else:
            _wait_press(kiosk, name, before, say)
        ok = bank.pressed_count[name] > before
        results.append(_said(say, {"name": f"button:{name}", "ok": ok,
                                   "detail": "" if ok else "no press detected"}))
    kiosk.selftest_prompt = None
    return results


def _said(say: Say, comp: dict[str, Any]) -> dict[str, Any]:
    comp["detail"] = str(comp["detail"])[:200]
    say(format_component(comp))
    return comp


def _camera(kiosk: Any) -> dict[str, Any]:
    st = kiosk.vision.status() if kiosk.vision is not None else {"camera": "absent"}
    detail = f"camera {st.get('camera')}" + (f": {st['last_error']}" if st.get("last_error") else "")
    return {"name": "camera", "ok": st.get("camera") in ("on", "off"), "detail": detail}


def _broker(kiosk: Any) -> dict[str, Any]:
    end = time.monotonic() + 10
    while not kiosk.publisher.connected and time.monotonic() < end:
        time.sleep(0.1)
    ok = kiosk.publisher.connected
    detail = kiosk.cfg.broker.url if ok else f"not connected: {kiosk.publisher.last_error}"
    return {"name": "broker", "ok": ok, "detail": detail}


def run_selftest(kiosk: Any, auto: bool, cmd_id: str | None = None, say: Say = _quiet) -> dict[str, Any]:
    say("Tự kiểm tra / self-test: nút bấm / buttons" + (" (tự động / automatic)" if auto else ""))
    comps: list[dict[str, Any]] = _check_buttons(kiosk, auto, say)
    say("Đèn, còi, loa / LEDs, buzzer, speaker")
    for name, ok, detail in kiosk.feedback.check():
        comps.append(_said(say, {"name": f"output:{name}", "ok": ok, "detail": detail}))
    ok, detail = kiosk.audio.check()
    comps.append(_said(say, {"name": "speaker", "ok": ok, "detail": detail}))
    if kiosk.cfg.camera_enabled:
        comps.append(_said(say, _camera(kiosk)))
    if kiosk.cfg.printer.kind != "none":
        say("Máy in: in vé thử / printer: printing a test ticket")
        ok, detail = kiosk.printer.test_page(kiosk.clock.wall().astimezone(kiosk.cfg.device.tz))
        comps.append(_said(say, {"name": "printer", "ok": ok, "detail": detail}))
    synced = kiosk.clock.clock_synced()
    comps.append(_said(say, {"name": "clock_sync", "ok": synced, "detail": "NTP synchronised" if synced
                             else "clock not synchronised (timestamps flagged clock_synced=false)"}))
    say("Máy chủ MQTT / broker connection (≤ 10 s)")
    comps.append(_said(say, _broker(kiosk)))
    report = {"passed": all(c["ok"] for c in comps), "components": comps, "cmd_id": cmd_id}
    out = kiosk.engine.emit(EventType.SELFTEST_REPORT, report)
    kiosk.publisher.kick.set()
    report["event_ids"] = out.event_ids
    return report


def format_component(c: dict[str, Any]) -> str:
    return f"{'PASS' if c['ok'] else 'FAIL'}  {c['name']:<20} {c['detail']}"


def format_report(report: dict[str, Any]) -> str:
    lines = [format_component(c) for c in report["components"]]
    verdict = "SELF-TEST PASSED (đạt)" if report["passed"] else "SELF-TEST FAILED (không đạt)"
    return "\n".join([*lines, verdict])
