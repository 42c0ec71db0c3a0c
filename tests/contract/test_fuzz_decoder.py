"""Fuzz the decoder with 12,000 generated payloads (seeded, reproducible): no exception escapes,
each rejection carries a known reason and a detail, and what is accepted the gateway can store
(apply_batch on SQLite raises nothing: a hostile payload is never a ``handler_error``)."""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from contract.codec import ContractError, RejectReason, decode, encode
from contract.payloads import EVENT_DATA_MODELS, Event, EventType, Health, Status
from contract.topics import TOPIC_PREFIX
from gateway.config import Settings
from gateway.registry import load_registry
from gateway.store import Store
from gateway.store.writer import Incoming, apply_batch

N = 12_000
NOW = datetime.now(UTC)
DAY = NOW.date().isoformat()
TICKET = {"ticket_no": 3, "label": "0003", "counter": 1, "service_day": DAY}
DATA: dict[EventType, dict[str, Any]] = {
    EventType.DEVICE_STARTED: {"sw_version": "1", "boot_id": "b", "restart": "boot",
                               "config_sha256": "0" * 64},
    EventType.TICKET_ISSUED: {**TICKET, "waiting_ahead": 2},
    EventType.TICKET_CALLED: {**TICKET, "wait_s": 30.5, "waiting_after": 1, "officer_id": "cb"},
    EventType.TICKET_RECALLED: {**TICKET, "recall_count": 1},
    EventType.TICKET_NO_SHOW: {**TICKET, "wait_s": None},
    EventType.SERVICE_COMPLETED: {**TICKET, "wait_s": 30.0, "service_s": 120.0, "officer_id": "cb"},
    EventType.RATING_SUBMITTED: {"ticket_no": 3, "service_day": DAY, "counter": 1, "level": 3, "scale": 3,
                                 "level_label": "Rất hài lòng"},
    EventType.SENTIMENT_WINDOW: {"counter": 1, "window_start": (NOW - timedelta(hours=1)).isoformat(),
                                 "window_end": NOW.isoformat(), "visits": 6, "k": 5, "frames": 40,
                                 "class_shares": {"happy": 0.5, "neutral": 0.5}, "score": 0.4},
    EventType.QUEUE_RESET: {"service_day": DAY, "discarded_waiting": 0, "reason": "x"},
    EventType.CMD_RESULT: {"cmd_id": str(uuid.uuid4()), "name": "selftest", "ok": True, "message": "ok"},
    EventType.SELFTEST_REPORT: {"passed": True, "components": [{"name": "printer", "ok": True}]},
    EventType.UPDATE_RESULT: {"bundle_id": "b", "version": "1", "outcome": "applied", "message": "m"},
}
ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 2**31, 2**63, 2**70, -(2**70), 1.5, 1e308, -0.0, "", "5", "x" * 300,
    "9999-12-31", "0001-01-01", [], [1, [2]], {}, {"a": {"b": 1}}, "\u0000", "2026-13-45T99:99:99+07:00",
]
RAW_TOKENS = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"[" * 64 + b"]" * 64, b'"\\ud800"', b"01"]


def _valid(rng: random.Random) -> tuple[str, dict[str, Any]]:
    kind = rng.choice(["events"] * 6 + ["health", "status"])
    env = {"v": 1, "device_id": "k03390-q1", "office_code": "03390", "ts": NOW.isoformat(),
           "clock_synced": True}
    if kind == "health":
        health = Health(**env, boot_id="b", uptime_s=5.0, outbox_depth=0, sw_version="1")
        return kind, json.loads(health.model_dump_json())
    if kind == "status":
        return kind, json.loads(Status(**env, state="online", sw_version="1").model_dump_json())
    etype = rng.choice(list(EVENT_DATA_MODELS))
    ev = Event(**env, event_id=str(uuid.uuid4()), seq=rng.randint(1, 10**6), type=etype, boot_id="b",
               mono_ms=rng.randint(0, 10**9), data=DATA[etype])
    return kind, json.loads(encode(ev))


def _mutate_obj(rng: random.Random, obj: dict[str, Any]) -> None:
    target = obj.get("data") if rng.random() < 0.6 else obj
    if not isinstance(target, dict) or not target:
        target = obj
    key = rng.choice(sorted(target))
    op = rng.random()
    if op < 0.5:
        target[key] = rng.choice(ODD_VALUES)
    elif op < 0.65:
        del target[key]
    elif op < 0.8:
        target[f"extra_{rng.randint(0, 9)}"] = rng.choice(ODD_VALUES)
    else:
        target[key] = {"nested": target[key]} if rng.random() < 0.5 else [target[key]] * rng.randint(0, 3)


def _payload(rng: random.Random) -> tuple[str, bytes]:
    kind, obj = _valid(rng)
    topic = f"{TOPIC_PREFIX}/03390/k03390-q1/{kind}"
    r = rng.random()
    if r < 0.55:
        for _ in range(rng.randint(1, 3)):
            _mutate_obj(rng, obj)
        return topic, json.dumps(obj).encode()
    raw = json.dumps(obj).encode()
    if r < 0.7:  # a raw token JSON does not have, in place of a value
        key = rng.choice([b'"seq": ', b'"waiting_ahead": ', b'"uptime_s": ', b'"ticket_no": ', b'"score": '])
        i = raw.find(key)
        if i >= 0:
            j = i + len(key)
            end = min(k for k in (raw.find(b",", j), raw.find(b"}", j)) if k >= 0)
            return topic, raw[:j] + rng.choice(RAW_TOKENS) + raw[end:]
        return topic, raw
    if r < 0.85:  # bytes: truncated, flipped, spliced
        b = bytearray(raw)
        for _ in range(rng.randint(1, 6)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return topic, bytes(b[: rng.randint(0, len(b))])
    if r < 0.93:  # another kind's topic, or a bad one
        other = rng.choice(["events", "health", "status", "cmd/reset_day", "telemetry", "events/x"])
        return f"{TOPIC_PREFIX}/03390/k03390-q1/{other}", raw
    return topic, raw  # valid: must decode


def test_fuzz_decoder_reasons_and_storage(tmp_path) -> None:
    rng = random.Random(20261204)
    reasons: dict[str, int] = {}
    accepted = []
    for _ in range(N):
        topic, payload = _payload(rng)
        try:
            accepted.append(decode(topic, payload))
        except ContractError as exc:
            assert exc.reason in RejectReason and exc.detail, (topic, payload[:200])
            reasons[exc.reason.value] = reasons.get(exc.reason.value, 0) + 1
    assert sum(reasons.values()) + len(accepted) == N
    assert {"bad_json", "invalid", "bad_topic", "unknown_version"} <= set(reasons), reasons
    assert len(accepted) > 500
    store = Store(f"sqlite:///{tmp_path / 'g.sqlite3'}")
    store.migrate()
    store.load_registry(load_registry(Settings().registry_file))
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    events = [d for d in accepted if d.topic.kind.value != "cmd"]
    for i in range(0, len(events), 200):
        apply_batch(store, [Incoming(d, time.time()) for d in events[i : i + 200]], {}, tz, set())
    counters = store.counters()
    assert counters.get("accepted", 0) + counters.get("duplicates", 0) > 0
    store.close()
