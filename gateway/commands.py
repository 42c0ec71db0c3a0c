"""Issuing commands to kiosks: one ``commands`` row, then the CommandRequest on ``cmd/<name>``.

The result arrives later as a ``cmd.result`` (or ``update.result``) event and settles the row.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from contract.codec import encode
from contract.payloads import CommandRequest
from contract.topics import cmd_topic


class IngestNotRunning(RuntimeError):
    """The gateway has no MQTT connection to publish on (ingest disabled)."""


def issue_command(state: Any, device_id: str, office_code: str, name: str, args: dict[str, Any],
                  issued_by: str) -> str:
    """Store and publish a command; returns its ``cmd_id``. ``state`` is ``app.state``."""
    if state.ingest is None or state.ingest.mqtt is None:
        raise IngestNotRunning("ingest/MQTT is not running")
    now = datetime.now(UTC)
    req = CommandRequest(cmd_id=str(uuid.uuid4()), name=name, args=args, issued_at=now,
                         issued_by=str(issued_by)[:200])
    state.store.add_command({
        "cmd_id": req.cmd_id, "device_id": device_id, "office_code": office_code,
        "name": req.name.value, "args": req.args, "issued_at": now.timestamp(),
        "issued_by": req.issued_by, "status": "sent", "result": None, "result_at": None,
    })
    if not state.ingest.mqtt.publish(cmd_topic(office_code, device_id, req.name.value), encode(req), qos=1):
        state.store.set_command_status(req.cmd_id, "publish_failed")
    return req.cmd_id
