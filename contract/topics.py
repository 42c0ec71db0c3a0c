"""MQTT topic layout: ``motcua/v1/<office_code>/<device_id>/<kind>[/<command>]``.

================================================  =====  ========  ==========================
topic                                             QoS    retained  sender
================================================  =====  ========  ==========================
motcua/v1/<office>/<device>/status                1      yes       kiosk (offline = Last Will)
motcua/v1/<office>/<device>/events                1      no        kiosk (durable outbox)
motcua/v1/<office>/<device>/health                0      no        kiosk, every N seconds
motcua/v1/<office>/<device>/cmd/<name>            1      no        gateway
================================================  =====  ========  ==========================

Command results travel back as ``cmd.result`` events on the events topic, so they are as durable
as any other event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

TOPIC_PREFIX = "motcua/v1"

OFFICE_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
DEVICE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,47}$")
COMMAND_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

# Everything the gateway subscribes to, and the shared-subscription form of it.
SUBSCRIBE_ALL = f"{TOPIC_PREFIX}/#"


def shared_subscription(group: str, topic_filter: str = SUBSCRIBE_ALL) -> str:
    """MQTT v5 shared subscription (``$share/<group>/<filter>``) for scaled-out gateways."""
    return f"$share/{group}/{topic_filter}"


class TopicKind(StrEnum):
    STATUS = "status"
    EVENTS = "events"
    HEALTH = "health"
    CMD = "cmd"


QOS = {TopicKind.STATUS: 1, TopicKind.EVENTS: 1, TopicKind.HEALTH: 0, TopicKind.CMD: 1}
RETAINED = {TopicKind.STATUS: True, TopicKind.EVENTS: False, TopicKind.HEALTH: False, TopicKind.CMD: False}


def _check(office_code: str, device_id: str) -> None:
    if not OFFICE_CODE_RE.match(office_code):
        raise ValueError(f"invalid office_code {office_code!r}: letters, digits, '-', '_' (1-32)")
    if not DEVICE_ID_RE.match(device_id):
        raise ValueError(f"invalid device_id {device_id!r}: lower-case letters, digits, '-', '_' (2-48)")


@dataclass(frozen=True, slots=True)
class Topic:
    office_code: str
    device_id: str
    kind: TopicKind
    command: str | None = None

    def __post_init__(self) -> None:
        _check(self.office_code, self.device_id)
        if (self.kind is TopicKind.CMD) != (self.command is not None):
            raise ValueError("a cmd topic needs a command name, and only a cmd topic has one")
        if self.command is not None and not COMMAND_NAME_RE.match(self.command):
            raise ValueError(f"invalid command name {self.command!r}")

    def __str__(self) -> str:
        base = f"{TOPIC_PREFIX}/{self.office_code}/{self.device_id}/{self.kind.value}"
        return f"{base}/{self.command}" if self.command else base

    @property
    def qos(self) -> int:
        return QOS[self.kind]

    @property
    def retained(self) -> bool:
        return RETAINED[self.kind]


def status_topic(office_code: str, device_id: str) -> str:
    return str(Topic(office_code, device_id, TopicKind.STATUS))


def events_topic(office_code: str, device_id: str) -> str:
    return str(Topic(office_code, device_id, TopicKind.EVENTS))


def health_topic(office_code: str, device_id: str) -> str:
    return str(Topic(office_code, device_id, TopicKind.HEALTH))


def cmd_topic(office_code: str, device_id: str, command: str) -> str:
    return str(Topic(office_code, device_id, TopicKind.CMD, command))


def cmd_filter(office_code: str, device_id: str) -> str:
    """What a kiosk subscribes to for its commands."""
    return f"{TOPIC_PREFIX}/{office_code}/{device_id}/cmd/+"


def parse_topic(topic: str) -> Topic:
    """Parse a topic string; raises ``ValueError`` naming the problem."""
    parts = topic.split("/")
    if len(parts) < 5 or f"{parts[0]}/{parts[1]}" != TOPIC_PREFIX:
        raise ValueError(f"topic {topic!r} is not under {TOPIC_PREFIX}/<office>/<device>/<kind>")
    office_code, device_id, kind_s = parts[2], parts[3], parts[4]
    try:
        kind = TopicKind(kind_s)
    except ValueError:
        raise ValueError(f"topic {topic!r}: unknown kind {kind_s!r}") from None
    if kind is TopicKind.CMD:
        if len(parts) != 6:
            raise ValueError(f"topic {topic!r}: cmd topics are .../cmd/<name>")
        return Topic(office_code, device_id, kind, parts[5])
    if len(parts) != 5:
        raise ValueError(f"topic {topic!r}: unexpected extra levels")
    return Topic(office_code, device_id, kind)
