"""Issuing commands to kiosks: one ``commands`` row, then the signed CommandRequest on ``cmd/<name>``.

The result arrives later as a ``cmd.result`` (or ``update.result``) event and settles the row.

Every request is signed with the gateway's command key (Ed25519, ``<data_dir>/command-key.pem``,
created 0600 on first use) over ``contract.command_auth.signing_bytes``: the request with its
``cmd_id`` and ``issued_at``, and the office and device it is for. Kiosks that list the public key
in ``[commands] trusted_keys`` refuse anything else (device/commands.py), so a client on the broker
cannot command a kiosk by knowing its topic. The public key to give kiosks:

    python -m gateway.commands pubkey --data-dir ./gateway-data

This key is online (the gateway needs it to sign); it is not the operator's offline update key.
"""

from __future__ import annotations

import argparse
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.codec import encode
from contract.command_auth import signing_bytes
from contract.payloads import CommandRequest
from contract.topics import cmd_topic

KEY_FILE = "command-key.pem"


class IngestNotRunning(RuntimeError):
    """The gateway has no MQTT connection to publish on (ingest disabled)."""


def command_key(data_dir: Path) -> Ed25519PrivateKey:
    """The gateway's command key, created (0600, never overwritten) on first use."""
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it meanwhile: use that one
            pass
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def public_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes_raw().hex()


def sign_request(
    req: CommandRequest, key: Ed25519PrivateKey, office_code: str, device_id: str
) -> CommandRequest:
    """``req`` with ``sig`` set for the kiosk ``device_id`` of ``office_code``."""
    sig = key.sign(signing_bytes(req, office_code, device_id)).hex()
    return req.model_copy(update={"sig": sig})


def _key_of(state: Any) -> Ed25519PrivateKey:
    key = getattr(state, "command_key", None)
    if key is None:
        key = command_key(state.settings.data_dir)
        state.command_key = key
    return key


def issue_command(state: Any, device_id: str, office_code: str, name: str, args: dict[str, Any],
                  issued_by: str) -> str:
    """Store and publish a signed command; returns its ``cmd_id``. ``state`` is ``app.state``."""
    if state.ingest is None or state.ingest.mqtt is None:
        raise IngestNotRunning("ingest/MQTT is not running")
    now = datetime.now(UTC)
    req = CommandRequest(cmd_id=str(uuid.uuid4()), name=name, args=args, issued_at=now,
                         issued_by=str(issued_by)[:200])
    req = sign_request(req, _key_of(state), office_code, device_id)
    state.store.add_command({
        "cmd_id": req.cmd_id, "device_id": device_id, "office_code": office_code,
        "name": req.name.value, "args": req.args, "issued_at": now.timestamp(),
        "issued_by": req.issued_by, "status": "sent", "result": None, "result_at": None,
    })
    if not state.ingest.mqtt.publish(cmd_topic(office_code, device_id, req.name.value), encode(req), qos=1):
        state.store.set_command_status(req.cmd_id, "publish_failed")
    return req.cmd_id


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="The gateway's command key (kiosks' [commands] trusted_keys).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pubkey", help="print the public key (hex), creating the key on first use")
    p.add_argument("--data-dir", type=Path, default=Path("./gateway-data"))
    a = ap.parse_args(argv)
    print(public_hex(command_key(a.data_dir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
