"""The kiosk: wires config, store, queue engine, GPIO, printer, audio, publisher and commands.

Its parts live beside it: button dispatch and the human-pace rule (device/dispatch.py), display state
(device/display.py), command authentication and handlers (device/commands.py), the store's start-up
check and high-water marks (device/store.py, device/highwater.py). What remains here is wiring,
status/health, live config reload and the update controller (apply_update, restart trial), which is
why this module is still over 400 lines: the update controller is to move next to device/updates/.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

from contract.codec import encode
from contract.payloads import CommandRequest, EventType, Health
from device import __version__ as SW_VERSION
from device.appointments import AppointmentDesk
from device.audio.player import Announcer
from device.clock import Clock, SystemClock
from device.commands import CommandGuard, CommandRunner
from device.config import ConfigError, KioskConfig, load_config
from device.dispatch import ButtonDispatch, PressPacer
from device.display import DisplayState
from device.events import EventBuilder
from device.hardware import make_pin_factory
from device.hardware.buttons import ButtonBank
from device.hardware.feedback import Feedback
from device.health import RecentErrors, system_figures
from device.printer import Printer
from device.publisher import Publisher
from device.queue import STORAGE_KINDS, Outcome, QueueEngine
from device.store import Store, StoreError

log = logging.getLogger("motcua.kiosk")
UPDATE_BROKER_WAIT_S = 30.0  # health check: the publisher must be connected within this


class Kiosk:
    def __init__(
        self,
        cfg: KioskConfig,
        data_dir: Path,
        simulate: bool,
        clock: Clock | None = None,
        store_max_pages: int | None = None,
    ) -> None:
        self.cfg, self.data_dir, self.simulate = cfg, Path(data_dir), simulate
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.clock = clock or SystemClock(cfg.clock.synced_override)
        self.store = Store(self.data_dir / "kiosk.db", cfg.outbox.quota_bytes, max_pages=store_max_pages)
        self.builder = EventBuilder(cfg.device.id, cfg.device.office_code, self.clock)
        self.engine = QueueEngine(cfg, self.store, self.clock, self.builder)
        self.printer = Printer(cfg.printer, self.data_dir)
        self.audio = Announcer(cfg.audio, self.data_dir, simulate)
        self.pacer = PressPacer(cfg.buttons.min_gap_ms, self.clock.monotonic)
        self.dispatch = ButtonDispatch(self, self.pacer)
        self.factory = make_pin_factory(simulate)
        self.feedback = Feedback(cfg.leds.pins, cfg.buzzer.pins, self.factory, cfg.leds.pwm)
        self.buttons = ButtonBank(
            cfg.buttons.pins, cfg.buttons.debounce_ms, self.factory, self.handle_press, self.feedback
        )
        self.commands: queue.Queue = queue.Queue(maxsize=100)
        guard = CommandGuard(
            cfg.commands.trusted_keys, cfg.commands.max_age_s, self.clock, cfg.device.office_code,
            cfg.device.id,
        )
        self.appointments = AppointmentDesk(self)  # device/appointments.py
        self.qr_camera: Any = None  # device/qr_camera.py, when [calling.appointments] qr_camera is set
        self.runner = CommandRunner(
            self, guard, {"reload_config": self._cmd_reload, "apply_update": self._cmd_apply_update,
                          "load_appointments": self.appointments.load_command}
        )
        self.publisher = Publisher(
            cfg.broker,
            cfg.device.id,
            cfg.device.office_code,
            self.store,
            self.builder,
            self.health_payload,
            cfg.health.interval_s,
            self.commands,
        )
        self.vision: Any = None
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self.display = DisplayState()
        self.errors = RecentErrors(self.clock, cfg.device.tz)
        self._last_error: str | None = None
        self.started_mono = self.clock.monotonic()
        self.selftest_prompt: str | None = None
        self.recovered_update: dict | None = None  # set by the CLI when it rolled back a probation release
        self._update_note = ""  # what the in-process switch to a new release did (for update.result)
        self._update_restart: list[str] = []  # sections of an applied release that need a restart
        self.restart_hook: Any = None  # set by the CLI: a clean self-restart (re-exec) of the kiosk
        self._threads: list[threading.Thread] = []

    @property
    def last_error(self) -> str | None:
        """The kiosk's own latest error (raw text); health shows it, stamped, only while recent."""
        return self._last_error

    @last_error.setter
    def last_error(self, value: str | None) -> None:
        self._last_error = value
        self.errors.note("kiosk", value)

    def recent_error(self) -> str | None:
        """The newest error of any component seen within the window, as "HH:MM text" (see RecentErrors)."""
        vs = self.vision.status() if self.vision is not None else {}
        for source, value in (
            ("store", self.store.last_error),
            ("publisher", self.publisher.last_error),
            ("printer", self.printer.last_error),
            ("audio", self.audio.last_error),
            ("vision", vs.get("last_error")),
        ):
            self.errors.observe(source, value)
        return self.errors.current()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.engine.expire_pending(force=True)  # a lowest rating left without reason before a crash
        last_boot = self.store.get_meta("last_boot_id")
        restart = "process" if last_boot == self.clock.boot_id else "boot"
        try:
            with self.store.tx() as cur:
                self.store.set_meta(cur, "last_boot_id", self.clock.boot_id)
        except StoreError as exc:  # only the boot/process distinction of the next start is at stake
            log.warning("could not record the boot id: %s", exc)
        recovery = self.store.recovery.message() if self.store.recovery else None
        if recovery:
            self.last_error = recovery  # health last_error, and device.started below
        if self.cfg.camera_enabled:
            self._start_vision()  # before device.started, which carries the model versions
        self.engine.emit(
            EventType.DEVICE_STARTED,
            {
                "sw_version": SW_VERSION,
                "boot_id": self.clock.boot_id,
                "restart": restart,
                "config_sha256": self.cfg.source_sha256,
                "model_versions": self._model_versions(),
                "store_recovery": recovery,
            },
        )
        self._recover_update()
        self.publisher.start()
        if self.cfg.calling.appointments.qr_camera:
            from device.qr_camera import QrCamera

            self.qr_camera = QrCamera(self.cfg.calling.appointments.qr_camera, self.appointments.redeem)
            self.qr_camera.start()
        threading.Thread(target=self._warm_up, name="warm-up", daemon=True).start()
        for target, name in ((self._tick, "tick"), (self._command_worker, "commands")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def shutdown(self) -> None:
        self._stop.set()
        if self.vision is not None:
            try:
                self.vision.stop()
            except Exception:  # shutting down anyway: say why the camera did not stop cleanly
                log.exception("vision stop failed at shutdown")
        if self.qr_camera is not None:
            self.qr_camera.stop()
        self.publisher.stop()
        self.audio.close()
        self.buttons.close()
        self.feedback.close()
        self.store.close()

    def _warm_up(self) -> None:
        """Load the printer/imaging/audio libraries in the background so the first press is fast."""
        try:
            import escpos.printer  # noqa: F401

            from device.printer import _font

            _font(110, True)
            for name in ("chime", "moi_so", "den_quay_so", "moi_danh_gia", "luot_phuc_vu_so"):
                self.audio.clip(name)
        except Exception as exc:  # only the first press gets slower; the press itself reports a real fault
            log.warning("warm-up failed: %s", exc)

    def _recover_update(self) -> None:
        """An update left on probation by a crash or power cut is rolled back (updates module)."""
        try:
            from device.updates import recover_interrupted
            from device.updates.apply import in_restart_trial
        except ImportError:
            return
        try:
            if in_restart_trial(self.data_dir):  # this start is the trial: _confirm_restart_trial decides
                threading.Thread(target=self._confirm_restart_trial, name="update-trial", daemon=True).start()
                return
            data = self.recovered_update or recover_interrupted(self.data_dir)
            self.recovered_update = None
        except Exception as exc:
            self.last_error = f"update recovery: {exc}"[:200]
            return
        if data:
            self.engine.emit(EventType.UPDATE_RESULT, data)

    def _confirm_restart_trial(self) -> None:
        """Restarted on a new release: healthy (database, broker within the wait) ends the probation;
        otherwise roll back now and restart on the previous release."""
        from device.updates import recover_interrupted
        from device.updates.apply import confirm_restart_trial

        problem = self._components_problem()
        if problem is None:
            confirm_restart_trial(self.data_dir)
            log.info("update confirmed after restart")
            return
        data = recover_interrupted(self.data_dir)  # the trial started: this swaps back
        if data:
            data = data | {"message": f"{problem}; {data['message']}"[:1000]}
            self.engine.emit(EventType.UPDATE_RESULT, data)  # kept in the outbox across the restart
        self.last_error = f"update rolled back after restart: {problem}"[:200]
        if self.restart_hook is not None:
            self.restart_hook()

    def _start_vision(self) -> None:
        from device.vision.service import VisionService

        self.vision = VisionService(
            self.cfg.vision, counter=self.cfg.device.counter, emit=self._vision_emit, clock=self.clock
        )
        self.vision.start()

    def _vision_emit(self, etype: EventType, data: dict[str, Any]) -> None:
        out = self.engine.emit(etype, data)
        if not out.ok:
            self.last_error = out.message
        self.publisher.kick.set()

    def _model_versions(self) -> dict[str, str]:
        if self.vision is not None:
            return dict(self.vision.status().get("model_versions", {}))
        return {}

    def _tick(self) -> None:
        """Expire unanswered reason choices (the rating is then sent without a reason)."""
        while not self._stop.wait(0.5):
            if self.store.corrupt:
                self._restart_for_store()
                return
            with self.lock:
                out = self.engine.expire_pending()
                if out is not None:
                    self.after(out)
                self.appointments.sweep_due()

    def _restart_for_store(self) -> None:
        """The database reported corruption while running: restart, so the start-up check moves it
        aside and a fresh one continues after the high-water marks (device/store.py)."""
        self.last_error = f"kiosk.db corrupt while running: {self.store.last_error}"[:200]
        log.error("%s; restarting", self.last_error)
        if self.restart_hook is not None:
            self.restart_hook()

    # ------------------------------------------------------------------ buttons

    def handle_press(self, name: str) -> Outcome:
        """Called from the GPIO callback after debounce and feedback (device/dispatch.py)."""
        return self.dispatch.press(name)

    def choose_reason(self, code: str) -> Outcome:
        with self.lock:
            out = self.engine.choose_reason(code)
            self.after(out)
            return out

    def after(self, out: Outcome) -> None:
        self.display.show(out)
        if out.kind in STORAGE_KINDS:
            self.last_error = out.message
            self.audio.chime("error")
        if out.event_ids:
            self.publisher.kick.set()

    # ------------------------------------------------------------------ status / health

    def status(self) -> dict[str, Any]:
        snap = self.engine.snapshot()
        reasons = [{"code": k, "text": v} for k, v in self.cfg.rating.reasons.items()]
        rating = [
            {"button": f"rate_{i}", "level": i, "label": self.cfg.rating.label(i)}
            for i in range(self.cfg.rating.scale, 0, -1)
        ]
        return snap | {
            "device_id": self.cfg.device.id,
            "office_code": self.cfg.device.office_code,
            "counter": self.cfg.device.counter,
            "message": self.display.message,
            "last_ticket": self.display.last_ticket,
            "version": self.display.version,
            "reasons": reasons if snap["reason_pending"] else [],
            "rating_levels": rating,
            "broker_connected": self.publisher.connected,
            "outbox_depth": self.store.outbox_depth(),
            "outbox_rejected": self.store.counter("outbox_rejected"),
            "refused": self.engine.refusals(),
            "clock_synced": self.clock.clock_synced(),
            "simulate": self.simulate,
            "buttons": list(self.cfg.buttons.pins),
            "selftest_prompt": self.selftest_prompt,
            "sw_version": SW_VERSION,
            "last_error": self.recent_error(),
            "vision": self._vision_status(),
        }

    def _vision_status(self) -> dict[str, Any]:
        """Vision progress for the display API: counts only, never image data."""
        if self.vision is None:
            return {"camera": "disabled" if not self.cfg.camera_enabled else "absent", "frames": 0,
                    "visits_open": 0}
        vs = self.vision.status()
        return {"camera": vs.get("camera"), "frames": int(vs.get("frames", 0)),
                "visits_open": int(vs.get("visits_open", 0))}

    def health_payload(self) -> bytes:
        vs = self.vision.status() if self.vision is not None else {}
        camera = vs.get("camera", "disabled" if not self.cfg.camera_enabled else "absent")
        last_error = self.recent_error()
        h = Health(
            **self.builder.envelope(),
            boot_id=self.clock.boot_id,
            **system_figures(self.data_dir),
            outbox_depth=self.store.outbox_depth(),
            outbox_rejected=self.store.counter("outbox_rejected"),
            outbox_evicted=self.store.counter("outbox_evicted"),
            queue_waiting=self.engine.snapshot()["waiting"],
            sw_version=SW_VERSION,
            model_versions=vs.get("model_versions", {}),
            camera=camera,
            vision_restarts=vs.get("vision_restarts", 0),
            last_error=last_error,
            refused=self.engine.refusals(),
            interval_s=self.cfg.health.interval_s,
        )
        return encode(h)

    # ------------------------------------------------------------------ commands

    def _command_worker(self) -> None:
        while not self._stop.is_set():
            try:
                topic, payload = self.commands.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.runner.handle(topic, payload)
            except Exception as exc:  # never let a command kill the worker
                log.exception("command failed")
                self.last_error = f"command: {exc}"[:200]
            if self._update_restart and self.restart_hook is not None:
                self.publisher.wait_drained(30)  # update.result and cmd.result out first (else kept)
                self._update_restart = []
                self.restart_hook()
                return

    def handle_command(self, topic: str, payload: bytes) -> Outcome:
        """One command from ``cmd/<name>`` (device/commands.py: guard, handler, cmd.result)."""
        return self.runner.handle(topic, payload)

    def _effective_config(self) -> KioskConfig:
        """The config file plus the active update release's overlay and models (see docs/kiosk.md)."""
        from device.updates import release_dir

        return load_config(self.cfg.path or "", release_dir(self.data_dir))

    def _cmd_reload(self, req: CommandRequest) -> tuple[bool, str, dict]:
        if not self.cfg.path:
            return False, "no config file to reload", {}
        try:
            new = self._effective_config()
        except ConfigError as exc:
            return False, f"{exc} (config unchanged)", {}
        msg, restart_needed = self._apply_config(new)
        return True, msg, {"config_sha256": new.source_sha256, "restart_needed": ",".join(restart_needed)}

    def _apply_config(self, new: KioskConfig) -> tuple[str, list[str]]:
        """Apply a validated config live: [queue] [rating] [audio] [printer] [health] at once, [camera]
        (and the models it names) by restarting the vision service; the rest needs a kiosk restart."""
        new = new.model_copy(update={"broker": self.cfg.broker, "display": self.cfg.display})
        restart_needed = [
            s for s in ("buttons", "leds", "buzzer", "device", "outbox", "clock", "commands")
            if getattr(new, s) != getattr(self.cfg, s)
        ]
        vision_changed = new.camera != self.cfg.camera or new.vision != self.cfg.vision
        with self.lock:
            live = self.cfg.model_copy(
                update={
                    "queue": new.queue,
                    "rating": new.rating,
                    "audio": new.audio,
                    "printer": new.printer,
                    "health": new.health,
                    "camera": new.camera,
                    "vision": new.vision,
                    "source_sha256": new.source_sha256,
                    "release": new.release,
                }
            )
            self.cfg = live
            self.engine.cfg = live
            self.audio.cfg = live.audio
            self.printer = Printer(live.printer, self.data_dir)
            self.publisher.health_interval_s = live.health.interval_s
        msg = "config reloaded ([queue] [rating] [audio] [printer] [health] applied)"
        if vision_changed:
            msg += self._restart_vision()
        if restart_needed:
            msg += f"; restart needed for: {', '.join(restart_needed)}"
        return msg, restart_needed

    def _restart_vision(self) -> str:
        old, self.vision = self.vision, None
        if old is not None:
            try:
                old.stop()
            except Exception:  # the new service starts anyway; the old one's fault is logged
                log.exception("vision stop failed before restart")
        if not self.cfg.camera_enabled:
            return "; camera off"
        try:
            self._start_vision()
        except Exception as exc:
            self.last_error = f"vision restart: {exc}"[:200]
            return f"; vision restart failed: {exc}"
        return f"; vision restarted with models in {self.cfg.vision.models_dir}"

    def _cmd_apply_update(self, req: CommandRequest) -> tuple[bool, str, dict]:
        try:
            from device.updates import handle_apply_update
            from device.updates.health import precheck_config
        except ImportError:
            return False, "not supported: this kiosk has no update module", {}
        keys_raw = self.cfg.updates.get("trusted_keys", [])
        try:
            keys = [bytes.fromhex(k) for k in keys_raw]
        except (TypeError, ValueError):
            return False, "[updates] trusted_keys must be a list of hex Ed25519 public keys", {}
        data = handle_apply_update(
            dict(req.args),
            data_dir=self.data_dir,
            trusted_keys=keys,
            health_check=self._update_health_check,
            office_code=self.cfg.device.office_code,
            cmd_id=req.cmd_id,
            precheck=lambda staged: precheck_config(self.cfg.path, staged),
        )
        message = str(data.get("message", ""))
        if data.get("outcome") != "applied":
            self._update_restart = []
        elif self._update_note:
            message += "; " + self._update_note
            if self._update_restart and self.restart_hook is not None:
                from device.updates.apply import begin_restart_trial

                begin_restart_trial(self.data_dir, req.cmd_id)  # the restarted kiosk must confirm
                message += f"; restarting the kiosk to apply: {', '.join(self._update_restart)}"
            data = data | {"message": message[:1000]}
        self._update_note = ""
        out = self.engine.emit(EventType.UPDATE_RESULT, data)
        self.publisher.kick.set()
        ok = data.get("outcome") == "applied"
        return ok and out.ok, message[:1000], {"outcome": data.get("outcome")}

    def _update_health_check(self) -> tuple[bool, str]:
        """After ``current`` switched: the new release's effective config and models must pass in child
        processes; then this kiosk switches to it in process and must stay healthy (database integrity,
        broker connected). If not, the previous config is put back before the rollback is reported."""
        from device.updates import release_dir
        from device.updates.health import check_release

        release = release_dir(self.data_dir)
        if release is not None and self.cfg.path:
            problem = check_release(self.cfg.path, release)
            if problem:
                return False, problem
        previous = self.cfg
        try:
            self._update_note, self._update_restart = self._apply_config(self._effective_config())
        except Exception as exc:
            problem = f"the kiosk could not switch to the new config: {exc}"
        else:
            problem = self._components_problem()
        from device.updates.slots import code_changed

        if problem is None and code_changed(self.data_dir):  # new kiosk code runs only after a restart
            self._update_restart.append("kiosk code")
        if problem:
            try:
                self._apply_config(previous)
            except Exception as exc:  # the rollback is still reported; a failed config restore must be seen
                log.exception("restoring the previous config failed")
                self.last_error = f"config restore after update failed: {exc}"[:200]
                problem = f"{problem}; restoring the previous config failed: {exc}"
            self._update_note, self._update_restart = "", []
            return False, problem
        return True, "healthy"

    def _components_problem(self) -> str | None:
        try:
            if not self.store.quick_check():
                return "kiosk database failed its integrity check"
        except Exception as exc:
            return f"kiosk database check raised {exc}"
        deadline = time.monotonic() + UPDATE_BROKER_WAIT_S
        while not self.publisher.connected:
            if time.monotonic() > deadline:
                return f"not connected to the broker within {UPDATE_BROKER_WAIT_S:.0f} s"
            time.sleep(0.2)
        return None

    # ------------------------------------------------------------------ misc

    def wait_stopped(self) -> None:
        while not self._stop.wait(1):
            pass

    def uptime(self) -> float:
        return self.clock.monotonic() - self.started_mono

    def sleep(self, s: float) -> None:
        time.sleep(s)

