"""Queue engine and store: numbering, durations, clock jumps, quota, full disk (real SQLite)."""

from __future__ import annotations

from datetime import datetime, timedelta

from contract.codec import decode
from contract.topics import events_topic
from device.clock import FakeClock
from device.store import Store
from tests.device.helpers import VN, make_engine, outbox_events


def test_full_visit_events_and_durations(tmp_path):
    q, store, clock = make_engine(tmp_path)
    a = q.issue()
    assert a.ok and a.ticket_no == 1 and a.label == "0001" and a.waiting_ahead == 0
    b = q.issue()
    assert b.ticket_no == 2 and b.waiting_ahead == 1
    clock.advance(120)
    called = q.next()
    assert called.called_label == "0001"
    clock.advance(300)
    done = q.next()  # the officer's next completes 0001 (its prompt opens) and calls 0002
    assert done.prompt_label == "0001" and done.called_label == "0002"
    rated = q.rate(3)
    assert rated.ok and rated.ticket_no == 1
    evs = outbox_events(store)
    assert [e["type"] for e in evs] == [
        "ticket.issued",
        "ticket.issued",
        "ticket.called",
        "service.completed",
        "ticket.called",
        "rating.submitted",
    ]
    assert [e["seq"] for e in evs] == [1, 2, 3, 4, 5, 6]
    assert len({e["event_id"] for e in evs}) == 6
    assert evs[2]["data"]["wait_s"] == 120
    assert evs[3]["data"]["service_s"] == 300 and evs[3]["data"]["wait_s"] == 120
    assert evs[5]["data"]["level_label"] == "Rất hài lòng" and evs[5]["data"]["ticket_no"] == 1
    topic = events_topic("LC-03390", "kiosk-demo-01")
    for r in store.pending(0, 100):
        decode(topic, r.payload)  # every stored payload satisfies the contract


def test_next_completes_serving_and_calls_following(tmp_path):
    q, store, clock = make_engine(tmp_path)
    q.issue(), q.issue()
    q.next()
    clock.advance(60)
    out = q.next()
    assert out.called_label == "0002"
    types = [e["type"] for e in outbox_events(store)]
    assert types[-2:] == ["service.completed", "ticket.called"]
    assert q.next().message.startswith("Không còn")
    assert q.recall().ok is False and q.no_show().ok is False


def test_lowest_rating_waits_for_reason_then_times_out(tmp_path):
    q, store, clock = make_engine(tmp_path)
    q.issue()
    q.next()
    q.next()  # completes: the prompt opens
    out = q.rate(1)
    assert out.needs_reason  # stored durably, sent when the reason comes
    assert "rating.submitted" not in [e["type"] for e in outbox_events(store)]
    assert q.choose_reason("nonsense").ok is False
    done = q.choose_reason("waited_too_long")
    assert done.ok and len(done.event_ids) == 1
    ev = outbox_events(store)[-1]
    assert ev["data"]["reason"] == "waited_too_long" and ev["data"]["level_label"] == "Không hài lòng"
    q.issue()
    q.next()
    q.next()
    assert q.rate(1).needs_reason
    assert q.expire_pending() is None
    clock.advance(q.cfg.rating.reason_timeout_s + 1)
    exp = q.expire_pending()
    assert exp is not None and len(exp.event_ids) == 1
    assert outbox_events(store)[-1]["data"]["reason"] is None


def test_rating_without_visit_refused(tmp_path):
    q, _, clock = make_engine(tmp_path)
    first = q.rate(2)
    assert first.ok is False and first.kind == "rating_no_prompt"
    q.issue()
    q.next()
    q.next()  # completes: prompt open
    assert q.rate(2).ok
    again = q.rate(2)
    assert again.ok is False and again.kind == "rating_duplicate"  # one rating per visit
    assert q.refusals() == {"rating_no_prompt": 1, "rating_duplicate": 1}


def test_second_press_never_rates_the_next_visit(tmp_path):
    """Issue 8: ``next, next, rate_3, rate_3`` with tickets waiting gave two ratings (the second press
    completed and rated the visit called 0.1 s earlier). Now: one rating, for 0001; 0002 untouched."""
    q, store, clock = make_engine(tmp_path)
    for _ in range(3):
        q.issue()
    q.next()
    clock.advance(0.1)
    q.next()  # completes 0001 (prompt for 0001), calls 0002
    assert q.rate(3).ticket_no == 1
    dup = q.rate(3)
    assert not dup.ok and dup.kind == "rating_duplicate" and dup.ticket_no == 1 and not dup.event_ids
    evs = outbox_events(store)
    ratings = [e["data"]["ticket_no"] for e in evs if e["type"] == "rating.submitted"]
    completed = [e["data"]["ticket_no"] for e in evs if e["type"] == "service.completed"]
    assert ratings == [1] and completed == [1]
    assert q.snapshot()["serving"] == "0002"  # still being served, not completed by a press
    assert q.refusals() == {"rating_duplicate": 1}


def test_press_with_no_prompt_never_completes_the_visit_being_served(tmp_path):
    q, store, clock = make_engine(tmp_path)
    q.issue(), q.issue()
    q.next()  # 0001 called, being served: no prompt yet
    before = len(outbox_events(store))
    out = q.rate(3)
    assert not out.ok and out.kind == "rating_no_prompt" and not out.event_ids
    assert len(outbox_events(store)) == before and q.snapshot()["serving"] == "0001"
    clock.advance(30)
    q.next()  # completes 0001: prompt opens, 0002 called
    clock.advance(q.cfg.rating.prompt_timeout_s + 1)
    late = q.rate(3)  # the prompt timed out
    assert not late.ok and late.kind == "rating_no_prompt"
    assert [e for e in outbox_events(store) if e["type"] == "rating.submitted"] == []
    assert q.refusals() == {"rating_no_prompt": 2}


def test_prompt_closes_when_a_new_visit_is_called(tmp_path):
    q, store, clock = make_engine(tmp_path)
    q.issue()
    q.next()
    q.next()  # completes 0001, nobody waiting: prompt for 0001 open
    assert q.snapshot()["rating_prompt"] == {"label": "0001", "ticket_no": 1}
    q.issue()
    q.next()  # calls 0002 (completed nothing): 0001's prompt ends
    assert q.snapshot()["rating_prompt"] is None
    assert q.rate(3).kind == "rating_no_prompt"


def test_farming_reports_true_service_times(tmp_path):
    """An officer's ``ticket, next, next, rate_3`` loop still rates only completed visits, each rating
    names its ticket, and service_s says how short the visit was (the gateway flags it)."""
    q, store, clock = make_engine(tmp_path)
    for _ in range(5):
        q.issue()
        q.next()
        clock.advance(0.08)
        q.next()
        q.rate(3)
    evs = outbox_events(store)
    completed = {
        e["data"]["ticket_no"]: e["data"]["service_s"] for e in evs if e["type"] == "service.completed"
    }
    rated = [e["data"]["ticket_no"] for e in evs if e["type"] == "rating.submitted"]
    assert rated == [1, 2, 3, 4, 5] and set(rated) == set(completed)
    assert all(abs(s - 0.08) < 1e-6 for s in completed.values())


def test_midnight_rollover_resets_numbers(tmp_path):
    clock = FakeClock(datetime(2026, 11, 30, 23, 59, 0, tzinfo=VN))
    q, _, _ = make_engine(tmp_path, clock)
    assert [q.issue().ticket_no for _ in range(3)] == [1, 2, 3]
    clock.advance(120)  # 00:01 local next day
    out = q.issue()
    assert out.ticket_no == 1 and out.service_day == "2026-12-01"


def test_midnight_is_local_time_not_utc(tmp_path):
    # 17:30 UTC on 30 Nov is 00:30 on 1 Dec in Vietnam.
    from datetime import UTC

    clock = FakeClock(datetime(2026, 11, 30, 17, 30, tzinfo=UTC))
    q, _, _ = make_engine(tmp_path, clock)
    assert q.issue().service_day == "2026-12-01"


def test_clock_jump_back_one_day_never_reuses_numbers(tmp_path):
    q, store, clock = make_engine(tmp_path)
    q.issue(), q.issue()
    clock.jump_wall(timedelta(days=-1))
    out = q.issue()
    assert out.service_day == "2026-11-30" and out.ticket_no == 3
    clock.advance(10)
    called = q.next()
    assert called.ok and called.label == "0001"
    ev = outbox_events(store)[-1]
    assert ev["type"] == "ticket.called" and ev["data"]["wait_s"] == 10  # monotonic, not wall


def test_clock_jump_forward_one_day_durations_stay_sane(tmp_path):
    q, store, clock = make_engine(tmp_path)
    q.issue()
    clock.advance(30)
    clock.jump_wall(timedelta(days=1))
    called = q.next()
    assert called.ok
    ev = outbox_events(store)[-1]
    assert ev["data"]["wait_s"] == 30  # monotonic, not wall
    out = q.issue()
    assert out.service_day == "2026-12-01" and out.ticket_no == 1
    clock.jump_wall(timedelta(days=-1))  # NTP steps back: keep the highest day, keep counting
    again = q.issue()
    assert again.service_day == "2026-12-01" and again.ticket_no == 2


def test_reboot_nulls_durations(tmp_path):
    q, store, clock = make_engine(tmp_path)
    q.issue()
    clock.reboot("boot-b")
    q.next()
    assert outbox_events(store)[-1]["data"]["wait_s"] is None


def test_numbers_survive_reopen(tmp_path):
    q, store, clock = make_engine(tmp_path)
    q.issue(), q.issue()
    store.close()
    q2, store2, _ = make_engine(tmp_path, clock)
    assert q2.issue().ticket_no == 3
    assert [e["seq"] for e in outbox_events(store2)] == [1, 2, 3]


def test_quota_evicts_low_priority_then_refuses_tickets(tmp_path):
    from contract.payloads import EventType

    q, store, clock = make_engine(tmp_path, quota=3000)
    for _ in range(3):
        q.emit(
            EventType.CMD_RESULT,
            {
                "cmd_id": "00000000-0000-4000-8000-000000000000",
                "name": "selftest",
                "ok": True,
                "message": "x",
            },
        )
    issued = 0
    while True:
        out = q.issue()
        if not out.ok:
            break
        issued += 1
        assert issued < 100
    assert "bộ nhớ đầy" in out.message
    types = [e["type"] for e in outbox_events(store)]
    assert "cmd.result" not in types  # evicted first
    assert types.count("ticket.issued") == issued
    assert store.counter("outbox_evicted") == 3 and store.counter("outbox_rejected") >= 1
    # The refused press did not consume a number: after the broker acks, numbering continues.
    store.ack([r.seq for r in store.pending(0, 1000)])
    assert q.issue().ticket_no == issued + 1


def test_disk_full_is_counted_and_recoverable(tmp_path):
    q, store, _ = make_engine(tmp_path, max_pages=30)
    results = [q.issue() for _ in range(400)]
    refused = [r for r in results if not r.ok]
    assert refused, "a 30-page database must fill up"
    assert "lưu trữ" in refused[0].message and store.disk_full_count >= 1
    ok_nos = [r.ticket_no for r in results if r.ok]
    assert ok_nos == list(range(1, len(ok_nos) + 1))  # no gap, no reuse
    store.close()
    reopened = Store(tmp_path / "kiosk.db", 10_000_000)  # no corruption: integrity check passes
    assert reopened._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert reopened.outbox_depth() == len(ok_nos)


def test_reset_day_discards_waiting_keeps_numbering(tmp_path):
    q, store, _ = make_engine(tmp_path)
    q.issue(), q.issue()
    out = q.reset_day("test")
    assert out.ok and outbox_events(store)[-1]["data"]["discarded_waiting"] == 2
    assert q.snapshot()["waiting"] == 0
    assert q.issue().ticket_no == 3
