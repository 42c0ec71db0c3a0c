"""Self-test fixes: the test ticket is stamped in the kiosk's local time, and the interactive
self-test talks to the terminal while it waits for each press."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import httpx

from device.app import Kiosk
from device.clock import FakeClock
from device.printer import TicketInfo
from device.selftest import run_selftest
from tests.device.kiosk_proc import REPO, write_config
from tests.support.mosquitto import free_port


def test_selftest_ticket_is_stamped_in_local_time(tmp_path, mosquitto):
    """20:59 UTC on 4 Dec is 03:59 on 5 Dec in Asia/Ho_Chi_Minh: the ticket must say the latter."""
    from device.config import load_config

    path = write_config(tmp_path / "k.toml", device_id="kiosk-tz", broker={"url": mosquitto.url})
    cfg = load_config(path)
    clock = FakeClock(datetime(2026, 12, 4, 20, 59, tzinfo=UTC))
    kiosk = Kiosk(cfg, tmp_path / "d", simulate=True, clock=clock)
    printed: list[TicketInfo] = []
    real_print = kiosk.printer.print_ticket

    def capture(t: TicketInfo):
        printed.append(t)
        return real_print(t)

    kiosk.printer.print_ticket = capture
    lines: list[str] = []
    kiosk.start()
    try:
        report = run_selftest(kiosk, auto=True, say=lines.append)
    finally:
        kiosk.shutdown()
    assert [c["ok"] for c in report["components"] if c["name"] == "printer"] == [True]
    (t,) = printed
    assert t.issued_at.strftime("Lấy số lúc %H:%M, ngày %d/%m/%Y") == "Lấy số lúc 03:59, ngày 05/12/2026"
    assert t.service_day == "2026-12-05"
    assert any(line.startswith("PASS  printer") for line in lines)  # said as it happened


def _reader(proc: subprocess.Popen, out: queue.Queue) -> None:
    for line in proc.stdout:
        out.put((time.monotonic(), line.rstrip("\n")))


def _next_line(out: queue.Queue, pred, timeout: float, seen: list[str]) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            _, line = out.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if pred(line):
            return line
    raise AssertionError(f"no matching line within {timeout} s; got:\n" + "\n".join(seen))


def _press(port: int, button: str) -> None:
    """The sim API drives the mock pin; during the self-test the press is counted, not acted on
    (409 "press ignored" is the kiosk saying it did not issue a ticket)."""
    r = httpx.post(f"http://127.0.0.1:{port}/api/sim/press/{button}", timeout=30)
    assert r.status_code in (200, 409), r.text


def test_interactive_selftest_prompts_in_the_terminal(tmp_path, mosquitto):
    """Without --auto the terminal shows each prompt, reminders with the time left, each result."""
    cfg = write_config(tmp_path / "k.toml", device_id="kiosk-st2")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "device.cli", "selftest", "--simulate", "--config", str(cfg), "--broker",
         mosquitto.url, "--data-dir", str(tmp_path / "d"), "--http-port", str(port)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    out: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(proc, out), daemon=True).start()
    seen: list[str] = []
    try:
        first = _next_line(out, lambda s: "press button " in s, 90, seen)
        # Nobody presses yet: a reminder with the time left must follow.
        _next_line(out, lambda s: "waiting for" in s and "left" in s, 30, seen)
        button = first.split("press button ")[1].split(")")[0]
        pressed = {button}
        _press(port, button)
        while True:
            line = _next_line(out, lambda s: "press button " in s or s.startswith("PASS  broker")
                              or s.startswith("FAIL"), 60, seen)
            if line.startswith("FAIL"):
                raise AssertionError("\n".join(seen))
            if line.startswith("PASS  broker"):
                break
            button = line.split("press button ")[1].split(")")[0]
            assert button not in pressed, "asked twice for the same button"
            pressed.add(button)
            _press(port, button)
        assert proc.wait(timeout=60) == 0
        text = "\n".join(seen) + "\n" + "\n".join(line for _, line in list(out.queue))
        for b in pressed:
            assert f"PASS  button:{b}" in text
        assert "SELF-TEST PASSED" in text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
