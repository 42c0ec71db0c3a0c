"""The wire contract between kiosks and the gateway: MQTT topics and versioned JSON payloads.

One source of truth shared by device/ and gateway/. Exported as JSON Schema with
``python -m contract.export`` (``make schema``) into ``contract/schemas/``.
"""

from contract.codec import ContractError, Decoded, decode, encode
from contract.payloads import (
    EVENT_DATA_MODELS,
    EVENT_MODELS,
    SCHEMA_VERSION,
    CommandRequest,
    Event,
    EventAdapter,
    EventType,
    Health,
    Status,
)
from contract.topics import TOPIC_PREFIX, Topic, TopicKind, parse_topic

__all__ = [
    "EVENT_DATA_MODELS",
    "EVENT_MODELS",
    "SCHEMA_VERSION",
    "TOPIC_PREFIX",
    "CommandRequest",
    "ContractError",
    "Decoded",
    "Event",
    "EventAdapter",
    "EventType",
    "Health",
    "Status",
    "Topic",
    "TopicKind",
    "decode",
    "encode",
    "parse_topic",
]
