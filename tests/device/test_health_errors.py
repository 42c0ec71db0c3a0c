"""Health's last_error is stamped with when it happened and reported only while recent (no sleeps)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from device.app import Kiosk
from device.clock import FakeClock
from device.health import ERROR_RECENT_S, RecentErrors
from tests.device.helpers import VN, make_config

T0 = datetime(2026, 11, 30, 7, 2, tzinfo=UTC)  # 14:02 in Hà Nội


def test_error_is_stamped_in_local_time_and_expires_after_the_window():
    clock = FakeClock(T0)
    errs = RecentErrors(clock, VN)
    assert errs.current() is None
    errs.note("printer", "printer: out of paper")
    assert errs.current() == "14:02 printer: out of paper"
    clock.advance(ERROR_RECENT_S - 1)
    assert errs.current() == "14:02 printer: out of paper"
    clock.advance(2)
    assert errs.current() is None


def test_newest_error_wins_and_an_older_one_returns_when_the_newer_expires_first():
    clock = FakeClock(T0)
    errs = RecentErrors(clock, VN, window_s=600)
    errs.note("printer", "printer: out of paper")
    clock.advance(300)
    errs.note("audio", "audio: no device")
    assert errs.current() == "14:07 audio: no device"
    clock.advance(301)  # the printer error is now 601 s old, the audio one 301 s
    assert errs.current() == "14:07 audio: no device"
    clock.advance(300)
    assert errs.current() is None


def test_observe_stamps_on_change_only_and_a_cleared_error_disappears_at_once():
    clock = FakeClock(T0)
    errs = RecentErrors(clock, VN)
    errs.observe("publisher", "connection lost")
    clock.advance(600)
    errs.observe("publisher", "connection lost")  # the same sticky text: still the 14:02 error
    assert errs.current() == "14:02 connection lost"
    clock.advance(ERROR_RECENT_S - 599)
    assert errs.current() is None
    errs.observe("publisher", "broker refused connection: 5")  # a new problem: stamped now
    assert errs.current() == "14:17 broker refused connection: 5"
    errs.observe("publisher", None)  # the component reports healthy again
    assert errs.current() is None


def test_unsynced_wall_clock_is_marked_and_a_wall_jump_does_not_change_the_age():
    clock = FakeClock(T0, synced=False)
    errs = RecentErrors(clock, VN)
    errs.note("kiosk", "storage full")
    assert errs.current() == "14:02? storage full"
    clock.jump_wall(timedelta(days=365))  # NTP steps the clock: the age is monotonic, unchanged
    assert errs.current() == "14:02? storage full"


@pytest.fixture
def kiosk(tmp_path):
    clock = FakeClock(T0)
    cfg = make_config(camera={"enabled": False}, printer={"kind": "file"})
    k = Kiosk(cfg, tmp_path / "data", simulate=True, clock=clock)
    yield k, clock
    k.buttons.close()
    k.feedback.close()
    k.audio.close()


def _health_error(k: Kiosk) -> str | None:
    return json.loads(k.health_payload())["last_error"]


def test_kiosk_health_and_status_drop_a_cleared_component_error_after_the_window(kiosk):
    k, clock = kiosk
    assert _health_error(k) is None
    k.printer.last_error = "printer: out of paper"  # sticky in the printer object
    assert _health_error(k) == "14:02 printer: out of paper"
    assert k.status()["last_error"] == "14:02 printer: out of paper"
    clock.advance(ERROR_RECENT_S + 1)
    assert _health_error(k) is None
    assert k.status()["last_error"] is None
    assert k.printer.last_error == "printer: out of paper"  # the component's own state is untouched


def test_kiosk_own_error_and_a_repeated_print_fault_are_stamped_each_time(kiosk, monkeypatch):
    k, clock = kiosk
    k.last_error = "update rolled back after restart: broker"
    assert _health_error(k) == "14:02 update rolled back after restart: broker"
    clock.advance(ERROR_RECENT_S + 60)  # 14:18
    assert _health_error(k) is None

    def broken(*_a, **_kw):
        raise OSError("out of paper")

    monkeypatch.setattr(k.printer, "_device", broken)
    assert k.handle_press("ticket").ok  # the ticket is still issued
    assert _health_error(k) == "14:18 printer: out of paper"
    clock.advance(ERROR_RECENT_S + 60)  # 14:34
    assert _health_error(k) is None
    assert k.handle_press("ticket").ok  # the same fault again: reported again, with the new time
    assert _health_error(k) == "14:34 printer: out of paper"


def test_kiosk_status_has_vision_counts_without_a_camera(kiosk):
    k, _ = kiosk
    assert k.status()["vision"] == {"camera": "disabled", "frames": 0, "visits_open": 0}
