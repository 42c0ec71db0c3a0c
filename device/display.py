"""Display state: what the counter screen shows besides the queue snapshot (device/queue.py).

``version`` changes on every press or command outcome, so the page (device/web/static/display.js)
re-renders its touch choices only when something happened. The rating prompt itself is queue state
(the store), so it survives a restart of the kiosk program; this state does not need to.
"""

from __future__ import annotations

from dataclasses import dataclass

from device.queue import Outcome

WELCOME = "Xin mời lấy số"


@dataclass
class DisplayState:
    message: str = WELCOME
    last_ticket: str | None = None  # the label last printed
    called: str | None = None  # the label last called or recalled
    version: int = 0
    qr: dict | None = None  # the latest QR redeem's outcome, for the touch page ("seq" counts them)

    def show(self, out: Outcome) -> None:
        """An outcome's message replaces the previous one (an ignored press without text keeps it)."""
        if out.message:
            self.message = out.message
        self.version += 1

    def qr_redeemed(self, out: Outcome) -> None:
        """A code shown to the camera: the touch page shows its number (or refusal) as if typed."""
        seq = self.qr["seq"] + 1 if self.qr else 1
        self.qr = {"seq": seq, "ok": out.ok, "label": out.label, "ticket_kind": out.ticket_kind,
                   "message": out.message}
