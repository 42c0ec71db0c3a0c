"""What a gateway signs in a :class:`~contract.payloads.CommandRequest` (Ed25519, ``sig`` field).

The signed bytes are the request as JSON (``model_dump(mode="json")``, keys sorted, no spaces,
without ``sig``) plus the office and device it is addressed to, so a command signed for one kiosk
cannot be replayed to another, and ``cmd_id`` and ``issued_at`` let the kiosk refuse replays and
stale commands (docs/kiosk.md, "Commands"). Both sides build the bytes with this one function.
"""

from __future__ import annotations

import json

from contract.payloads import CommandRequest

CONTEXT = "motcua-command-v1"


def signing_bytes(req: CommandRequest, office_code: str, device_id: str) -> bytes:
    body = req.model_dump(mode="json", exclude={"sig"})
    doc = {"context": CONTEXT, "office_code": office_code, "device_id": device_id, "request": body}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
