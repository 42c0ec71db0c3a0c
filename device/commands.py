"""Commands from the gateway: who may send them (:class:`CommandGuard`: Ed25519-signed, fresh, not
replayed) and running them (:class:`CommandRunner`: decode, guard, handler, ``cmd.result``).

Every ``CommandRequest`` on ``.../cmd/<name>`` passes :meth:`CommandGuard.check` before it runs:

* ``[commands] trusted_keys`` set: the request must carry ``sig``, a valid Ed25519 signature by one
  of those keys over ``contract.command_auth.signing_bytes`` (the request, this kiosk's office and
  device id). Missing: ``command_unsigned``; wrong: ``command_forged``.
* No trusted key (a kiosk set up before command signing): only commands whose effect is harmless or
  protected elsewhere run unsigned (``selftest``, ``reload_config`` of the kiosk's own file,
  ``apply_update`` whose bundle is signed by the operator's key); ``reset_day`` and ``camera`` are
  refused as ``command_unsigned``.
* Stale (``command_stale``): with a synchronised clock, ``issued_at`` more than ``max_age_s`` from
  the kiosk's wall clock; without one, more than ``max_age_s`` older than the newest accepted
  command, projected forward on the monotonic clock (a wall clock stepped at boot cannot open a
  window for old commands).
* Replayed (``command_replayed``): a ``cmd_id`` already seen (the last 4096 are remembered; older
  ones are stale anyway).

A refusal is answered by a ``cmd.result`` with ``ok = false`` and counted in health ``refused``.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contract.codec import ContractError, decode
from contract.command_auth import signing_bytes
from contract.payloads import CommandRequest, EventType
from device.clock import Clock
from device.queue import REFUSED_PREFIX, Outcome

log = logging.getLogger("motcua.kiosk.commands")

UNSIGNED, FORGED, STALE, REPLAYED = "command_unsigned", "command_forged", "command_stale", "command_replayed"
UNSIGNED_ALLOWED = frozenset({"selftest", "reload_config", "apply_update"})  # only without trusted keys
REMEMBER = 4096


class CommandGuard:
    def __init__(self, keys_hex: list[str], max_age_s: float, clock: Clock, office_code: str,
                 device_id: str) -> None:
        self.keys = [Ed25519PublicKey.from_public_bytes(bytes.fromhex(k)) for k in keys_hex]
        self.max_age_s, self.clock = max_age_s, clock
        self.office_code, self.device_id = office_code, device_id
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._newest: tuple[datetime, float] | None = None  # (issued_at, monotonic when accepted)

    def check(self, req: CommandRequest) -> tuple[str, str] | None:
        """None if the command may run, else (refusal kind, message)."""
        problem = self._signature(req) or self._freshness(req)
        if problem is not None:
            return problem
        if req.cmd_id in self._seen:
            return REPLAYED, f"refused: command {req.cmd_id} was already received (replay)"
        self._seen[req.cmd_id] = None
        while len(self._seen) > REMEMBER:
            self._seen.popitem(last=False)
        if self._newest is None or req.issued_at > self._newest[0]:
            self._newest = (req.issued_at, self.clock.monotonic())
        return None

    def _signature(self, req: CommandRequest) -> tuple[str, str] | None:
        if not self.keys:
            if req.name.value in UNSIGNED_ALLOWED:
                return None
            return UNSIGNED, (f"refused: {req.name.value} needs a signed command and this kiosk has no "
                              "[commands] trusted_keys (see docs/kiosk.md)")
        if req.sig is None:
            return UNSIGNED, "refused: unsigned command (this kiosk accepts only gateway-signed commands)"
        data = signing_bytes(req, self.office_code, self.device_id)
        for key in self.keys:
            try:
                key.verify(bytes.fromhex(req.sig), data)
                return None
            except InvalidSignature:
                continue
        return FORGED, "refused: bad signature (not signed by a trusted gateway key for this kiosk)"

    def _freshness(self, req: CommandRequest) -> tuple[str, str] | None:
        if self.clock.clock_synced():
            age = (self.clock.wall() - req.issued_at).total_seconds()
            if abs(age) > self.max_age_s:
                limit = f"limit {self.max_age_s:.0f} s"
                return STALE, f"refused: issued {age:.0f} s from this kiosk's clock ({limit})"
            return None
        if self._newest is not None:
            issued, mono = self._newest
            lag = (issued - req.issued_at).total_seconds() + (self.clock.monotonic() - mono)
            if lag > self.max_age_s:
                return STALE, f"refused: issued {lag:.0f} s before the newest accepted command (stale)"
        return None


# --------------------------------------------------------------------------- running commands

UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
Handler = Callable[[CommandRequest], tuple[bool, str, dict]]


def reset_token(service_day: str) -> str:
    """The confirmation a ``reset_day`` command must carry: ``RESET-<service day>``."""
    return f"RESET-{service_day}"


def cmd_id_of(payload: bytes) -> str:
    """Best effort: the cmd_id of a malformed command (even broken JSON), so the sender can correlate."""
    m = re.search(rb'"cmd_id"\s*:\s*"([0-9a-f-]{36})"', payload[:16384])
    if m and re.match(UUID_RE, m.group(1).decode()):
        return m.group(1).decode()
    return str(uuid.uuid4())


class CommandRunner:
    """Decode → guard → handler → ``cmd.result``. The queue and display handlers live here; the kiosk
    passes the ones that belong to its update controller and live config (``reload_config``,
    ``apply_update``) as ``extra``. ``kiosk`` gives the engine, store, publisher, vision and lock."""

    def __init__(self, kiosk: Any, guard: CommandGuard, extra: dict[str, Handler]) -> None:
        self.kiosk, self.guard = kiosk, guard
        self.handlers: dict[str, Handler] = {
            "reset_day": self.reset_day,
            "selftest": self.selftest,
            "camera": self.camera,
            **extra,
        }
        self.malformed = 0

    def handle(self, topic: str, payload: bytes) -> Outcome:
        name = topic.rsplit("/", 1)[-1][:200]
        try:
            req = decode(topic, payload).message
        except ContractError as exc:
            self.malformed += 1
            return self.result(cmd_id_of(payload), name, False, f"malformed command: {exc}"[:1000])
        if not isinstance(req, CommandRequest):  # a cmd/ topic always decodes to one (contract.topics)
            self.malformed += 1
            return self.result(cmd_id_of(payload), name, False, "malformed command: not a CommandRequest")
        if req.name.value != name:
            return self.result(
                req.cmd_id, name, False, f"command name {req.name.value!r} does not match topic {name!r}"
            )
        refusal = self.guard.check(req)
        if refusal is not None:
            kind, message = refusal
            self.kiosk.store.bump(REFUSED_PREFIX + kind)
            log.warning("command %s %s refused: %s", req.name.value, req.cmd_id, message)
            return self.result(req.cmd_id, req.name.value, False, message, {"refused": kind})
        try:
            ok, message, details = self.handlers[req.name.value](req)
        except Exception as exc:  # answered, and logged with its traceback
            log.exception("command %s failed", req.name.value)
            ok, message, details = False, f"command failed: {exc}", {}
        return self.result(req.cmd_id, req.name.value, ok, message, details)

    def result(self, cmd_id: str, name: str, ok: bool, message: str, details: dict | None = None) -> Outcome:
        out = self.kiosk.engine.emit(
            EventType.CMD_RESULT,
            {"cmd_id": cmd_id, "name": name, "ok": ok, "message": message[:1000], "details": details or {}},
        )
        self.kiosk.publisher.kick.set()
        return out

    def reset_day(self, req: CommandRequest) -> tuple[bool, str, dict]:
        k = self.kiosk
        day = k.engine.snapshot()["service_day"]
        if req.args.get("confirm") != reset_token(day):
            message = (
                "refused: args.confirm must be 'RESET-<the kiosk's service day, YYYY-MM-DD>' (docs/kiosk.md)"
            )
            return False, message, {"service_day": day}
        with k.lock:
            reason = str(req.args.get("reason") or f"command {req.cmd_id} by {req.issued_by}")
            out = k.engine.reset_day(reason)
            k.after(out)
        if not out.ok:
            return False, out.message, {}
        return True, out.message, {"service_day": day}

    def selftest(self, req: CommandRequest) -> tuple[bool, str, dict]:
        from device.selftest import run_selftest

        report = run_selftest(self.kiosk, auto=self.kiosk.simulate, cmd_id=req.cmd_id)
        failed = [c["name"] for c in report["components"] if not c["ok"]]
        message = "self-test passed" if report["passed"] else f"self-test failed: {failed}"
        return report["passed"], message, {}

    def camera(self, req: CommandRequest) -> tuple[bool, str, dict]:
        state = req.args.get("state", req.args.get("on"))
        if state in ("on", True):
            on = True
        elif state in ("off", False):
            on = False
        else:
            return False, "args.state must be 'on' or 'off'", {}
        vision = self.kiosk.vision
        if vision is None:
            message = "camera not enabled in this kiosk's config ([camera] enabled = false) or vision absent"
            return False, message, {}
        vision.set_enabled(on)
        return True, f"camera {'on' if on else 'off'}", {"camera": vision.status().get("camera")}
