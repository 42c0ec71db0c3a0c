"""The wire contract: topics, payload validation, rejection reasons, exported JSON Schema."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import jsonschema
import pytest

from contract import ContractError, Event, EventType, decode, encode
from contract.codec import RejectReason
from contract.export import main as export_main
from contract.export import schemas
from contract.topics import Topic, TopicKind, cmd_topic, events_topic, parse_topic, status_topic


def _event(**over):
    base = dict(
        event_id=str(uuid.uuid4()), device_id="k-03390-1", office_code="03390", seq=1,
        type=EventType.TICKET_ISSUED, ts=datetime.now(UTC), clock_synced=True, boot_id="b", mono_ms=5,
        data={"ticket_no": 1, "label": "0001", "counter": 1, "service_day": "2026-11-30", "waiting_ahead": 0},
    )
    base.update(over)
    return Event(**base)


def test_topics_round_trip() -> None:
    assert events_topic("03390", "k-03390-1") == "motcua/v1/03390/k-03390-1/events"
    assert parse_topic(status_topic("03390", "k1")) == Topic("03390", "k1", TopicKind.STATUS)
    t = parse_topic(cmd_topic("03390", "k1", "reset_day"))
    assert t.kind is TopicKind.CMD and t.command == "reset_day"
    for bad in ["motcua/v2/03390/k1/events", "motcua/v1/03390/k1/nope", "motcua/v1/03390/K 1/events",
                "motcua/v1/03390/k1/events/x", "motcua/v1/03390/k1/cmd"]:
        with pytest.raises(ValueError):
            parse_topic(bad)


def test_event_round_trip_and_typed_data() -> None:
    ev = _event()
    back = decode(events_topic("03390", "k-03390-1"), encode(ev))
    assert back.message == ev
    assert back.message.typed_data().ticket_no == 1


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", RejectReason.BAD_JSON),
        (b"[1,2]", RejectReason.BAD_JSON),
        (b"\xff\xfe", RejectReason.BAD_JSON),
        (json.dumps({"v": 2}).encode(), RejectReason.UNKNOWN_VERSION),
        (json.dumps({"v": True}).encode(), RejectReason.UNKNOWN_VERSION),
        (json.dumps({"v": 1, "type": "ticket.issued"}).encode(), RejectReason.INVALID),
        (b"x" * 20000, RejectReason.TOO_LARGE),
    ],
)
def test_rejections_have_reasons(payload: bytes, reason: RejectReason) -> None:
    with pytest.raises(ContractError) as ei:
        decode(events_topic("03390", "k-03390-1"), payload)
    assert ei.value.reason is reason


@pytest.mark.parametrize("version", [True, 1.0, "1"])
def test_version_must_be_the_integer_1(version: object) -> None:
    """As in the exported JSON Schema (const 1): JSON true, 1.0 or "1" are not version 1."""
    raw = json.loads(encode(_event()))
    raw["v"] = version
    with pytest.raises(ContractError) as ei:
        decode(events_topic("03390", "k-03390-1"), json.dumps(raw).encode())
    assert ei.value.reason is RejectReason.UNKNOWN_VERSION


def test_spoofed_device_rejected() -> None:
    with pytest.raises(ContractError) as ei:
        decode(events_topic("03390", "other-device"), encode(_event()))
    assert ei.value.reason is RejectReason.SPOOFED


def test_unknown_fields_and_bad_data_rejected() -> None:
    raw = json.loads(encode(_event()))
    raw["face_embedding"] = [0.1, 0.2]
    with pytest.raises(ContractError) as ei:
        decode(events_topic("03390", "k-03390-1"), json.dumps(raw).encode())
    assert ei.value.reason is RejectReason.INVALID
    raw = json.loads(encode(_event()))
    raw["data"]["ticket_no"] = 0
    with pytest.raises(ContractError):
        decode(events_topic("03390", "k-03390-1"), json.dumps(raw).encode())


def test_rating_level_within_scale_and_sentiment_k() -> None:
    rating = {"service_day": "2026-11-30", "counter": 1, "level": 4, "scale": 3, "level_label": "x"}
    with pytest.raises(ValueError):
        _event(type=EventType.RATING_SUBMITTED, data=rating)
    window = {"counter": 1, "window_start": "2026-11-30T08:00:00+07:00",
              "window_end": "2026-11-30T09:00:00+07:00", "visits": 3, "k": 5, "frames": 10,
              "class_shares": {"happy": 1.0}, "score": 1.0}
    with pytest.raises(ValueError, match="below k"):
        _event(type=EventType.SENTIMENT_WINDOW, data=window)


def test_exported_schema_is_current_and_validates(tmp_path) -> None:
    assert export_main(["--check"]) == 0, "contract/schemas is stale: run `make schema`"
    s = schemas()
    jsonschema.validate(json.loads(encode(_event())), s["event.v1.json"])
    bad = json.loads(encode(_event()))
    del bad["event_id"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, s["event.v1.json"])
    data_schema = s["event-data/ticket.issued.v1.json"]
    jsonschema.validate(_event().data, data_schema)
