"""Issue 8 at the counter, on the real kiosk process and a real Mosquitto: each attack on the rating
figures is ignored and counted (health ``refused``), and what is sent stays true."""

from __future__ import annotations

import httpx

from tests.device.kiosk_proc import KioskProc, Watcher, write_config


def _raw_press(k: KioskProc, button: str) -> dict:
    """Press at once, as a script or a fast finger would (no human pacing)."""
    r = httpx.post(f"{k.base}/api/sim/press/{button}", params={"pace": "false"}, timeout=30)
    return {"status": r.status_code} | r.json()


def _by_type(w: Watcher, etype: str) -> list[dict]:
    seen, out = set(), []
    for e in w.events():
        if e["type"] == etype and e["event_id"] not in seen:
            seen.add(e["event_id"])
            out.append(e)
    return out


def test_double_press_rates_one_visit_and_is_counted(tmp_path, mosquitto):
    w = Watcher(mosquitto.port)
    k = KioskProc(write_config(tmp_path / "k.toml", device_id="kiosk-dbl"), mosquitto.url, tmp_path / "d")
    k.start()
    try:
        for _ in range(3):
            k.press("ticket")
        k.press("next")
        assert k.press("next")["called_label"] == "0002"  # completes 0001, calls 0002
        first, second = k.press("rate_3"), k.press("rate_3")
        assert first["ok"] and first["ticket_no"] == 1
        assert not second["ok"] and second["kind"] == "rating_duplicate" and second["event_ids"] == []
        st = k.status()
        assert st["serving"] == "0002" and st["rating_prompt"] is None  # 0002 neither completed nor rated
        assert st["refused"] == {"rating_duplicate": 1}
        w.wait_for(lambda: w.of_kind("health") and w.of_kind("health")[-1]["refused"], 30, "health")
        assert w.of_kind("health")[-1]["refused"] == {"rating_duplicate": 1}
        ratings = _by_type(w, "rating.submitted")
        assert [(r["data"]["ticket_no"], r["data"]["level"]) for r in ratings] == [(1, 3)]
        assert [e["data"]["ticket_no"] for e in _by_type(w, "service.completed")] == [1]
    finally:
        k.terminate()
        w.close()


def test_farming_burst_is_dropped_and_what_passes_is_true(tmp_path, mosquitto):
    """``ticket, next, next, rate_3`` twenty times as fast as presses go (7.4 s gave 20 "Rất hài lòng"
    visits before): counter presses faster than a person are dropped and counted; then the same loop
    at a human pace: every rating names a completed visit whose true, tiny service_s is reported."""
    w = Watcher(mosquitto.port)
    k = KioskProc(write_config(tmp_path / "k.toml", device_id="kiosk-farm"), mosquitto.url, tmp_path / "d")
    k.start()
    try:
        for _ in range(20):
            for button in ("ticket", "next", "next", "rate_3"):
                _raw_press(k, button)
        st = k.status()
        refused = st["refused"]
        assert refused.get("too_fast", 0) >= 20, refused  # most of the 60 counter presses
        k.press("ticket")  # settle: the human pace again
        burst_ratings = len([e for e in _by_type(w, "rating.submitted")])
        for _ in range(3):
            for button in ("ticket", "next", "next", "rate_3"):
                k.press(button)
        w.wait_for(lambda: len(_by_type(w, "rating.submitted")) >= burst_ratings + 3, 60, "paced ratings")
        completed = {e["data"]["ticket_no"]: e["data"]["service_s"] for e in _by_type(w, "service.completed")}
        ratings = _by_type(w, "rating.submitted")
        rated = [r["data"]["ticket_no"] for r in ratings]
        assert len(rated) == len(set(rated)) and set(rated) <= set(completed)  # one per completed visit
        assert burst_ratings < 20, f"{burst_ratings} farmed ratings passed the pace rule"
        for no in rated[-3:]:
            assert completed[no] is not None and completed[no] < 5  # reported as it was: seconds at most
        print(f"\nfarming burst: 20 rounds -> {burst_ratings} ratings, refused {refused}")
    finally:
        k.terminate()
        w.close()
