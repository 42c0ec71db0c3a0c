"""Who may command this kiosk: Ed25519-signed commands from the gateway, fresh and not replayed.

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

from collections import OrderedDict
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contract.command_auth import signing_bytes
from contract.payloads import CommandRequest
from device.clock import Clock

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
