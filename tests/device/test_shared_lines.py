"""One queue per service field across counters (docs/kiosk.md#one-queue-per-service-field-across-counters):
an entrance kiosk owns the lines, two counter kiosks call from them, all real processes on a real
Mosquitto; the uplink cut is the broker stopped (the LAN, here loopback HTTP, stays up)."""

from __future__ import annotations

import json
import sqlite3

import httpx
import pytest

from device.line_tokens import counter_token
from hil.harness.wait import wait_for
from tests.device.kiosk_proc import Watcher
from tests.device.shared_lines import TOKEN, Office, typed


@pytest.mark.slow
def test_counters_share_a_field_line_priority_voice_rating_and_uplink_cut(tmp_path, mosquitto):
    watcher = Watcher(mosquitto.port)
    office = Office(tmp_path, mosquitto.url, {3: ["land"], 5: ["land", "civil"]}).start()
    try:
        labels = [office.ticket("land")["label"] for _ in range(3)]
        assert labels == ["1001", "1002", "1003"]  # field 1's series; unique per field and day
        assert office.ticket("civil")["label"] == "2001"
        assert office.entrance.press("field_civil")["label"] == "2002"  # the field's button at the door
        refused = office.entrance.press("next")  # the entrance calls nobody: counters do
        assert not refused["ok"] and refused["kind"] == "line_entrance_choose_field"
        prio = office.ticket("land", "priority")
        assert prio["label"] == "U1004" and prio["waiting_ahead"] == 3  # ahead in its own line only
        c3, c5 = office.counters[3], office.counters[5]

        first = c3.press("next")  # priority_first: the priority ticket, whoever calls
        assert first["ok"] and first["called_label"] == "U1004", first
        assert first["message"] == "Mời số U1004 đến quầy số 3"
        second = c5.press("next")
        assert second["called_label"] == "1001"
        hall = office.entrance.status()
        assert hall["message"] == "Mời số 1001 đến quầy số 5"  # the hall display says where to go
        calls = [{"label": "1001", "counter": 5}, {"label": "U1004", "counter": 3}]
        assert hall["line"]["calls"][:2] == calls
        assert list((office.entrance.data_dir / "audio").glob("*.wav")), "the entrance spoke the calls"

        mosquitto.stop()  # the uplink is cut; the LAN is up
        done = c3.press("next")  # completes U1004, calls 1002
        assert done["called_label"] == "1002" and done["prompt_label"] == "U1004"
        rated = c3.press("rate_3")
        assert rated["ok"], rated
        assert office.ticket("civil")["label"] == "2003"
        assert c5.status()["serving"] == "1001"
        wait_for(lambda: c5.status()["waiting"] == 4, 30, "counter 5 shows 1003, 2001-2003 waiting")
        assert c3.press("ticket")["kind"] == "line_ticket_at_entrance"
        wait_for(lambda: c3.status()["line"]["ratings_unsent"] == 0, 60, "rating forwarded on the LAN")
        assert "line_rating_refused" not in office.entrance.status()["refused"]
        mosquitto.start()

        watcher.wait_for(lambda: len(typed(watcher, "rating.submitted")) == 1, 90, "the forwarded rating")
        rating = typed(watcher, "rating.submitted")[0]
        assert rating["device_id"] == "kiosk-entrance"
        assert rating["data"]["counter"] == 99 and rating["data"]["serving_counter"] == 3
        assert rating["data"]["ticket_no"] == 1004
        watcher.wait_for(lambda: len(typed(watcher, "ticket.called")) == 3, 60, "calls")
        calls = {e["data"]["ticket_no"]: e["data"] for e in typed(watcher, "ticket.called")}
        assert calls[1004]["kind"] == "priority" and calls[1004]["service_field"] == "land"
        assert calls[1004]["serving_counter"] == 3 and calls[1001]["serving_counter"] == 5
        senders = {e["device_id"] for e in watcher.events() if e["type"].startswith("ticket.")}
        assert senders == {"kiosk-entrance"}
    finally:
        office.stop()
        watcher.close()


@pytest.mark.slow
def test_line_api_refuses_a_wrong_token_and_bad_requests(tmp_path, mosquitto):
    office = Office(tmp_path, mosquitto.url, {})
    office.entrance.start()
    try:
        url = f"{office.entrance_url}/api/line/request"
        body = {"request_id": "ab" * 16, "counter": 3, "op": "next", "fields": ["land"]}
        assert httpx.post(url, json=body, timeout=10).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.post(url, json=body, headers=wrong, timeout=10).status_code == 401
        # a large body from anyone on the LAN is refused before it is read (declared or streamed)
        big = b"x" * (1 << 20)
        assert httpx.post(url, content=big, timeout=30).status_code == 413
        assert httpx.post(url, content=iter([big[:65536]] * 16), timeout=30).status_code == 413
        # the office's secret is not a counter's token; counter 5's token cannot act for counter 3
        secret = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.post(url, json=body, headers=secret, timeout=10).status_code == 401
        as_five = {"Authorization": f"Bearer {counter_token(TOKEN, 5)}"}
        assert httpx.post(url, json=body, headers=as_five, timeout=10).status_code == 403
        auth = {"Authorization": f"Bearer {counter_token(TOKEN, 3)}"}
        assert httpx.post(url, json=body | {"fields": ["tax"]}, headers=auth, timeout=10).status_code == 422
        assert httpx.post(url, json=body | {"counter": 0}, headers=auth, timeout=10).status_code == 422
        assert httpx.post(url, json=body | {"op": "reset"}, headers=auth, timeout=10).status_code == 422
        # a forged rating (a visit this counter never completed) is refused and counted, never sent
        rate = {"request_id": "cd" * 16, "counter": 3, "op": "rate",
                "rating": {"ticket_no": 1001, "service_day": "2026-12-05", "level": 3, "scale": 3,
                           "level_label": "x"}}
        r = httpx.post(url, json=rate, headers=auth, timeout=10)
        assert r.status_code == 200 and r.json()["ok"] is False
        assert office.entrance.status()["refused"].get("line_rating_refused") == 1
        assert httpx.get(f"{office.entrance_url}/api/sim/press/ticket", timeout=10).status_code == 404
        # the same request sent twice (its answer was lost) is answered twice with the same ticket
        assert [office.ticket("land")["label"] for _ in range(2)] == ["1001", "1002"]
        once = httpx.post(url, json=body, headers=auth, timeout=10).json()
        again = httpx.post(url, json=body, headers=auth, timeout=10).json()
        assert once["called"]["label"] == again["called"]["label"] == "1001" and again["replayed"]
        # the same request_id with another body is refused, never answered with the first's ticket
        reused = httpx.post(url, json=body | {"op": "recall"}, headers=auth, timeout=10)
        assert reused.status_code == 409 and reused.json()["conflict"], reused.text
        other = httpx.post(url, json=body | {"request_id": "ef" * 16}, headers=auth, timeout=10).json()
        assert other["called"]["label"] == "1002"  # counter 3 finished 1001 and called the next
        assert other["completed"]["label"] == "1001"
    finally:
        office.stop()


@pytest.mark.slow
def test_counter_killed_after_the_entrance_answered_shows_the_same_citizen(tmp_path, mosquitto):
    """The crash window: counter 3 wrote its request, the entrance committed the call, the counter died
    before recording the answer. At restart it resends the same request and shows the same ticket;
    nobody else is called."""
    watcher = Watcher(mosquitto.port)
    office = Office(tmp_path, mosquitto.url, {3: ["land"]}).start()
    c3 = office.counters[3]
    try:
        assert [office.ticket("land")["label"] for _ in range(2)] == ["1001", "1002"]
        c3.kill9()
        request_id = "0123456789abcdef" * 2
        db = sqlite3.connect(c3.data_dir / "kiosk.db")
        with db:
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('line.pending', ?)",
                       (json.dumps({"request_id": request_id, "op": "next"}),))
        db.close()
        body = {"request_id": request_id, "counter": 3, "op": "next", "fields": ["land"]}
        answer = httpx.post(f"{office.entrance_url}/api/line/request", json=body,
                            headers={"Authorization": f"Bearer {counter_token(TOKEN, 3)}"}, timeout=10).json()
        assert answer["called"]["label"] == "1001"  # the call the dead counter never recorded
        c3.proc = None
        c3.start()
        wait_for(lambda: c3.status()["serving"] == "1001", 60, "counter 3 shows its citizen again")
        assert c3.status()["line"]["pending"] is False
        watcher.wait_for(lambda: len(typed(watcher, "ticket.called")) >= 1, 60, "the call")
        assert c3.press("next")["called_label"] == "1002"  # completes 1001, calls 1002
        watcher.wait_for(lambda: len(typed(watcher, "ticket.called")) == 2, 60, "the second call")
        called = [e["data"]["label"] for e in typed(watcher, "ticket.called")]
        assert called == ["1001", "1002"]  # 1001 called once, by counter 3
    finally:
        office.stop()
        watcher.close()
