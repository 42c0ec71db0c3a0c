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
    assert type(back.message).__name__ == "TicketIssuedEvent"
    assert back.message.data.ticket_no == 1 and back.message.data.service_day.isoformat() == "2026-11-30"


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
    jsonschema.validate(json.loads(encode(_event()))["data"], data_schema)


# ----------------------------------------------------------------- the contract refuses what cannot be true


def _raw_event(**data_over: object) -> dict:
    raw = json.loads(encode(_event()))
    raw["data"].update(data_over)
    return raw


def _reason(raw: dict | bytes) -> RejectReason:
    payload = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    with pytest.raises(ContractError) as ei:
        decode(events_topic("03390", "k-03390-1"), payload)
    return ei.value.reason


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ticket_no", "5"),  # a string is not an integer
        ("ticket_no", True),  # nor is a boolean
        ("ticket_no", 1.0),  # nor a float, even a whole one
        ("ticket_no", 10**6),  # beyond any day of one counter
        ("counter", 0),
        ("counter", 10_000),
        ("waiting_ahead", -1),
        ("waiting_ahead", 2**70),
    ],
)
def test_strict_and_bounded_data(field: str, value: object) -> None:
    assert _reason(_raw_event(**{field: value})) is RejectReason.INVALID


@pytest.mark.parametrize(
    ("field", "value"),
    [("seq", 2**70), ("seq", 2**63), ("seq", "5"), ("seq", 5.0), ("mono_ms", 2**63), ("mono_ms", -1),
     ("clock_synced", 1), ("clock_synced", "true")],
)
def test_strict_and_bounded_envelope(field: str, value: object) -> None:
    raw = json.loads(encode(_event()))
    raw[field] = value
    assert _reason(raw) is RejectReason.INVALID


def test_non_finite_numbers_are_not_json() -> None:
    """Python's json.dumps writes NaN/Infinity, which JSON does not have: bad_json, not a figure."""
    for token in ("NaN", "Infinity", "-Infinity"):
        payload = encode(_event()).replace(b'"waiting_ahead":0', b'"waiting_ahead":' + token.encode())
        assert _reason(payload) is RejectReason.BAD_JSON
    window = {"counter": 1, "window_start": "2026-11-30T08:00:00+07:00",
              "window_end": "2026-11-30T09:00:00+07:00", "visits": 5, "k": 5, "frames": 10,
              "class_shares": {"happy": 1.0}, "score": float("nan")}
    with pytest.raises(ValueError):
        _event(type=EventType.SENTIMENT_WINDOW, data=window)


def test_sentiment_window_bounds() -> None:
    base = {"counter": 1, "window_start": "2026-11-30T08:00:00+07:00",
            "window_end": "2026-11-30T09:00:00+07:00", "visits": 5, "k": 5, "frames": 10,
            "class_shares": {"happy": 1.0}, "score": 1.0}
    assert _event(type=EventType.SENTIMENT_WINDOW, data=base).data.visits == 5
    for over in ({"visits": 10**15, "k": 5}, {"window_end": "2026-11-30T08:00:00+07:00"},
                 {"window_end": "2026-12-02T09:00:00+07:00"}, {"k": True}):
        with pytest.raises(ValueError):
            _event(type=EventType.SENTIMENT_WINDOW, data={**base, **over})


@pytest.mark.parametrize("depth", [40, 5000, 100_000])
def test_deep_json_is_bad_json(depth: int) -> None:
    raw = json.loads(encode(_event()))
    head = json.dumps(raw)[:-1] + ', "x": '
    payload = (head + "[" * depth + "]" * depth + "}").encode()
    if len(payload) > 16 * 1024:
        assert _reason(payload) is RejectReason.TOO_LARGE
    else:
        assert _reason(payload) is RejectReason.BAD_JSON


def test_event_is_a_discriminated_union() -> None:
    from contract.payloads import EVENT_MODELS, EventAdapter

    schema = schemas()["event.v1.json"]
    assert schema["discriminator"]["propertyName"] == "type"
    assert set(schema["discriminator"]["mapping"]) == {t.value for t in EventType}
    rating = {"ticket_no": 3, "service_day": "2026-11-30", "counter": 2, "level": 3, "scale": 3,
              "level_label": "Rất hài lòng"}
    ev = _event(type=EventType.RATING_SUBMITTED, data=rating)
    assert isinstance(ev, EVENT_MODELS[EventType.RATING_SUBMITTED]) and isinstance(ev, Event)
    assert ev.data.level == 3 and ev.data.counter == 2
    assert EventAdapter.validate_json(encode(ev)) == ev
    raw = json.loads(encode(ev))
    raw["type"] = "ticket.issued"  # rating data under another type: refused by that type's model
    assert _reason(raw) is RejectReason.INVALID
