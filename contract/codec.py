"""Encode and decode MQTT payloads against the contract, with counted rejection reasons."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from pydantic import BaseModel, ValidationError
from pydantic_core import SchemaValidator

from contract.payloads import (
    MAX_PAYLOAD_BYTES,
    SCHEMA_VERSION,
    CommandRequest,
    Event,
    EventAdapter,
    Health,
    Status,
)
from contract.topics import Topic, TopicKind, parse_topic


class RejectReason(StrEnum):
    TOO_LARGE = "too_large"
    BAD_TOPIC = "bad_topic"
    BAD_JSON = "bad_json"
    UNKNOWN_VERSION = "unknown_version"
    INVALID = "invalid"
    SPOOFED = "spoofed"


class ContractError(ValueError):
    """A message that does not satisfy the contract. ``reason`` is a stable counter label."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


Message = Status | Health | Event | CommandRequest

MAX_JSON_DEPTH = 32  # our deepest payload nests 4 levels; deeper is refused as bad_json

VALIDATOR_FOR_KIND: dict[TopicKind, SchemaValidator] = {
    TopicKind.STATUS: Status.__pydantic_validator__,
    TopicKind.HEALTH: Health.__pydantic_validator__,
    TopicKind.EVENTS: EventAdapter.validator,  # the discriminated union on ``type``
    TopicKind.CMD: CommandRequest.__pydantic_validator__,
}


@dataclass(frozen=True, slots=True)
class Decoded:
    topic: Topic
    message: Message


def encode(message: BaseModel) -> bytes:
    """Serialise a contract model to compact UTF-8 JSON."""
    data = message.model_dump_json(exclude_none=False).encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ContractError(RejectReason.TOO_LARGE, f"{len(data)} bytes > {MAX_PAYLOAD_BYTES}")
    return data


# A fleet has a few thousand topics: parse each once (Topic is immutable; a bad topic is not cached).
_parse_topic = lru_cache(maxsize=65536)(parse_topic)


def decode(topic: str, payload: bytes) -> Decoded:
    """Validate a received message. Raises :class:`ContractError` with a reason to count.

    Fast path: one pass of pydantic's JSON validator over the bytes. It is taken only when it
    succeeds with ``v`` present (``Literal[1]`` then accepts exactly the values equal to 1, as the
    checked path does); anything else goes through the checked path (json.loads, version check,
    validation), which decides the rejection reason, so results and reasons are those of that path.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError(RejectReason.TOO_LARGE, f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        parsed_topic = _parse_topic(topic)
    except ValueError as exc:
        raise ContractError(RejectReason.BAD_TOPIC, str(exc)) from None
    validator = VALIDATOR_FOR_KIND[parsed_topic.kind]
    try:
        message = validator.validate_json(payload)
    except ValidationError:
        message = None
    if message is not None and "v" in message.model_fields_set:
        return _check_origin(parsed_topic, message)
    return _decode_checked(parsed_topic, payload)


def _decode_checked(parsed_topic: Topic, payload: bytes) -> Decoded:
    """json.loads decides ``bad_json`` (also too deep, or NaN/Infinity, which are not JSON) and
    ``unknown_version``; then the JSON validator (strict types, dates as ISO strings) decides
    ``invalid``."""
    try:
        obj = json.loads(payload, parse_constant=_not_json)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ContractError(RejectReason.BAD_JSON, str(exc)[:200]) from None
    if not isinstance(obj, dict):
        raise ContractError(RejectReason.BAD_JSON, "payload is not a JSON object")
    if _depth(obj) > MAX_JSON_DEPTH:
        raise ContractError(RejectReason.BAD_JSON, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    version = obj.get("v")
    if type(version) is not int or version != SCHEMA_VERSION:  # JSON true or 1.0 is not version 1
        raise ContractError(RejectReason.UNKNOWN_VERSION, f"v={obj.get('v')!r}, expected {SCHEMA_VERSION}")
    try:
        message = VALIDATOR_FOR_KIND[parsed_topic.kind].validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ContractError(RejectReason.INVALID, f"{where}: {first['msg']}") from None
    return _check_origin(parsed_topic, message)


def _not_json(token: str) -> float:
    raise json.JSONDecodeError(f"{token} is not JSON", token, 0)


def _depth(obj: object) -> int:
    """Nesting depth of a parsed JSON value, without recursion (a hostile payload is deep)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node)
    return deepest


def _check_origin(parsed_topic: Topic, message: Message) -> Decoded:
    if parsed_topic.kind is not TopicKind.CMD and (
        message.device_id != parsed_topic.device_id or message.office_code != parsed_topic.office_code
    ):
        raise ContractError(
            RejectReason.SPOOFED,
            f"payload says {message.office_code}/{message.device_id}, "
            f"topic says {parsed_topic.office_code}/{parsed_topic.device_id}",
        )
    return Decoded(parsed_topic, message)
