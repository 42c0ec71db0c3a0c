"""Live config reload: a validated :class:`KioskConfig` applied to a running kiosk.

``[queue] [rating] [audio] [printer] [health]`` and the sections of other modules
(``cfg.extra``, see device/config.py ``EXTRA_SECTIONS``) apply at once, under the kiosk's lock, so a
press sees either the old or the new config, never half of each. ``[camera]`` (and the models it
names) applies by restarting the vision service. ``[broker]`` and ``[display]`` always keep their
running values (the command-line overrides live there); any other changed section is reported as
needing a kiosk restart. Used by the ``reload_config`` command and by the update controller
(device/update_control.py) when it switches to a new release in process.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from contract.payloads import CommandRequest
from device.config import ConfigError, KioskConfig, load_config
from device.printer import Printer
from device.updates import release_dir

if TYPE_CHECKING:
    from device.app import Kiosk

log = logging.getLogger("motcua.kiosk.reload")
LIVE_SECTIONS = ("queue", "rating", "audio", "printer", "health", "camera", "vision", "extra")
RESTART_SECTIONS = ("buttons", "leds", "buzzer", "device", "outbox", "clock", "commands")


class ConfigReloader:
    def __init__(self, kiosk: Kiosk) -> None:
        self.kiosk = kiosk

    def effective_config(self) -> KioskConfig:
        """The config file plus the active update release's overlay and models (see docs/kiosk.md)."""
        k = self.kiosk
        return load_config(k.cfg.path or "", release_dir(k.data_dir))

    def cmd_reload(self, req: CommandRequest) -> tuple[bool, str, dict]:
        """The ``reload_config`` command: a config that does not validate leaves the running one."""
        if not self.kiosk.cfg.path:
            return False, "no config file to reload", {}
        try:
            new = self.effective_config()
        except ConfigError as exc:
            return False, f"{exc} (config unchanged)", {}
        msg, restart_needed = self.apply(new)
        return True, msg, {"config_sha256": new.source_sha256, "restart_needed": ",".join(restart_needed)}

    def apply(self, new: KioskConfig) -> tuple[str, list[str]]:
        """Apply a validated config live; returns (what was done, sections that need a restart)."""
        k = self.kiosk
        new = new.model_copy(update={"broker": k.cfg.broker, "display": k.cfg.display})
        restart_needed = [s for s in RESTART_SECTIONS if getattr(new, s) != getattr(k.cfg, s)]
        if new.extra.get("line") != k.cfg.extra.get("line"):  # shared-line role and token: read at start
            restart_needed.append("line")
            new = new.model_copy(update={"extra": new.extra | {"line": k.cfg.extra.get("line")}})
        vision_changed = new.camera != k.cfg.camera or new.vision != k.cfg.vision
        with k.lock:
            update = {s: getattr(new, s) for s in LIVE_SECTIONS}
            live = k.cfg.model_copy(update=update | {"source_sha256": new.source_sha256,
                                                     "release": new.release})
            k.cfg = live
            k.engine.cfg = live
            k.audio.cfg = live.audio
            k.printer = Printer(live.printer, k.data_dir)
            k.publisher.health_interval_s = live.health.interval_s
        msg = "config reloaded ([queue] [rating] [audio] [printer] [health] applied)"
        if vision_changed:
            msg += self.restart_vision()
        if restart_needed:
            msg += f"; restart needed for: {', '.join(restart_needed)}"
        return msg, restart_needed

    def restart_vision(self) -> str:
        """Stop the vision service and start it on the live config; the outcome as a message suffix."""
        k = self.kiosk
        old, k.vision = k.vision, None
        if old is not None:
            try:
                old.stop()
            except Exception:  # the new service starts anyway; the old one's fault is logged
                log.exception("vision stop failed before restart")
        if not k.cfg.camera_enabled:
            return "; camera off"
        try:
            k.start_vision()
        except Exception as exc:
            k.last_error = f"vision restart: {exc}"[:200]
            return f"; vision restart failed: {exc}"
        return f"; vision restarted with models in {k.cfg.vision.models_dir}"
