"""What the kiosk reports about itself: the counter display's ``/api/status`` and the MQTT ``health``
payload, both read from the live parts of a :class:`device.app.Kiosk` at the moment they are asked.

Only counts, states and short error texts leave here: vision contributes frame and visit counts and
model versions, never image data. The newest error of any part is shown, stamped, only while it is
recent (device/health.py ``RecentErrors``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from contract.codec import encode
from contract.payloads import Health
from device import __version__ as SW_VERSION
from device.health import system_figures

if TYPE_CHECKING:
    from device.app import Kiosk


class KioskStatus:
    def __init__(self, kiosk: Kiosk) -> None:
        self.kiosk = kiosk

    def recent_error(self) -> str | None:
        """The newest error of any component seen within the window, as "HH:MM text" (see RecentErrors)."""
        k = self.kiosk
        vs = k.vision.status() if k.vision is not None else {}
        for source, value in (
            ("store", k.store.last_error),
            ("publisher", k.publisher.last_error),
            ("printer", k.printer.last_error),
            ("audio", k.audio.last_error),
            ("vision", vs.get("last_error")),
        ):
            k.errors.observe(source, value)
        return k.errors.current()

    def status(self) -> dict[str, Any]:
        k = self.kiosk
        cfg = k.cfg
        snap = k.engine.snapshot()
        reasons = [{"code": c, "text": v} for c, v in cfg.rating.reasons.items()]
        rating = [
            {"button": f"rate_{i}", "level": i, "label": cfg.rating.label(i)}
            for i in range(cfg.rating.scale, 0, -1)
        ]
        if k.line_owner is not None:  # the entrance kiosk: waiting per field, latest calls (hall display)
            snap = snap | {"line": k.line_owner.status()}
        return snap | {
            "device_id": cfg.device.id,
            "office_code": cfg.device.office_code,
            "office_name": cfg.device.office_name,
            "counter": cfg.device.counter,
            "message": k.display.message,
            "last_ticket": k.display.last_ticket,
            "version": k.display.version,
            "qr": k.display.qr,
            "reasons": reasons if snap["reason_pending"] else [],
            "rating_levels": rating,
            "broker_connected": k.publisher.connected,
            "outbox_depth": k.store.outbox_depth(),
            "outbox_rejected": k.store.counter("outbox_rejected"),
            "refused": k.engine.refusals(),
            "clock_synced": k.clock.clock_synced(),
            "simulate": k.simulate,
            "buttons": list(cfg.buttons.pins),
            "selftest_prompt": k.selftest_prompt,
            "sw_version": SW_VERSION,
            "last_error": self.recent_error(),
            "vision": self.vision_status(),
        }

    def vision_status(self) -> dict[str, Any]:
        """Vision progress for the display API: counts only, never image data."""
        k = self.kiosk
        if k.vision is None:
            return {"camera": "disabled" if not k.cfg.camera_enabled else "absent", "frames": 0,
                    "visits_open": 0}
        vs = k.vision.status()
        return {"camera": vs.get("camera"), "frames": int(vs.get("frames", 0)),
                "visits_open": int(vs.get("visits_open", 0))}

    def health_payload(self) -> bytes:
        k = self.kiosk
        vs = k.vision.status() if k.vision is not None else {}
        camera = vs.get("camera", "disabled" if not k.cfg.camera_enabled else "absent")
        h = Health(
            **k.builder.envelope(),
            boot_id=k.clock.boot_id,
            **system_figures(k.data_dir),
            outbox_depth=k.store.outbox_depth(),
            outbox_rejected=k.store.counter("outbox_rejected"),
            outbox_evicted=k.store.counter("outbox_evicted"),
            queue_waiting=k.engine.snapshot()["waiting"],
            sw_version=SW_VERSION,
            model_versions=vs.get("model_versions", {}),
            camera=camera,
            vision_restarts=vs.get("vision_restarts", 0),
            last_error=self.recent_error(),
            refused=k.engine.refusals(),
            interval_s=k.cfg.health.interval_s,
        )
        return encode(h)
