"""The kiosk: wires config, store, queue engine, GPIO, printer, audio, publisher and commands, and
runs its threads (tick, command worker, warm-up).

Its parts, one job each:

* device/dispatch.py: a button press through the human-pace rule to the queue engine, printer, voice;
* device/display.py: what the counter screen shows besides the queue;
* device/commands.py: command authentication and running (``cmd.result``);
* device/reload.py: live config reload (``reload_config``), vision restart;
* device/update_control.py: the ``apply_update`` command, release probation and restart trials;
* device/kiosk_status.py: ``/api/status`` and the MQTT health payload;
* device/store.py, device/highwater.py: the database's start-up check and high-water marks.

Every part reads the live config from ``kiosk.cfg`` at use (a reload replaces it under ``kiosk.lock``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

from contract.payloads import EventType
from device import __version__ as SW_VERSION
from device.appointments import AppointmentDesk
from device.audio.player import Announcer
from device.clock import Clock, SystemClock
from device.commands import CommandGuard, CommandRunner
from device.config import KioskConfig
from device.config_line import line_of
from device.config_queue import calling_of
from device.dispatch import ButtonDispatch, PressPacer
from device.display import DisplayState
from device.entrance import EntranceDesk
from device.events import EventBuilder
from device.hardware import make_pin_factory
from device.hardware.buttons import ButtonBank
from device.hardware.feedback import Feedback
from device.health import RecentErrors
from device.kiosk_status import KioskStatus
from device.line_client import CounterEngine, LineClient
from device.line_owner import LineOwner
from device.printer import Printer
from device.publisher import Publisher
from device.queue import STORAGE_KINDS, Outcome, QueueEngine
from device.reload import ConfigReloader
from device.store import Store, StoreError
from device.update_control import UpdateController

log = logging.getLogger("motcua.kiosk")


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
        role = line_of(cfg).role  # shared lines (device/config_line.py): entrance owner or counter
        self.engine = (CounterEngine if role == "counter" else QueueEngine)(cfg, self.store, self.clock,
                                                                            self.builder)
        self.line_owner = LineOwner(self) if role == "entrance" else None  # device/line_owner.py
        self.entrance = EntranceDesk(self) if role == "entrance" else None  # device/entrance.py
        self.line_client = LineClient(self) if role == "counter" else None  # device/line_client.py
        self.printer = Printer(cfg.printer, self.data_dir)
        self.audio = Announcer(cfg.audio, self.data_dir, simulate)
        self.pacer = PressPacer(cfg.buttons.min_gap_ms, self.clock.monotonic)
        self.dispatch = ButtonDispatch(self, self.pacer)
        self.factory = make_pin_factory(simulate)
        self.feedback = Feedback(cfg.leds.pins, cfg.buzzer.pins, self.factory, cfg.leds.pwm)
        self.buttons = ButtonBank(
            cfg.buttons.pins, cfg.buttons.debounce_ms, self.factory, self.handle_press, self.feedback
        )
        self.reloader = ConfigReloader(self)
        self.updates = UpdateController(self)
        self.reporter = KioskStatus(self)
        self.commands: queue.Queue = queue.Queue(maxsize=100)
        self.appointments = AppointmentDesk(self)  # device/appointments.py
        self.qr_camera: Any = None  # device/qr_camera.py, when [calling.appointments] qr_camera is set
        self.runner = self._command_runner()
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
        self.restart_hook: Any = None  # set by the CLI: a clean self-restart (re-exec) of the kiosk
        self._threads: list[threading.Thread] = []

    def _command_runner(self) -> CommandRunner:
        c = self.cfg
        guard = CommandGuard(c.commands.trusted_keys, c.commands.max_age_s, self.clock, c.device.office_code,
                             c.device.id)
        handlers = {"reload_config": self.reloader.cmd_reload, "apply_update": self.updates.cmd_apply_update,
                    "load_appointments": self.appointments.load_command}
        return CommandRunner(self, guard, handlers)

    @property
    def last_error(self) -> str | None:
        """The kiosk's own latest error (raw text); health shows it, stamped, only while recent."""
        return self._last_error

    @last_error.setter
    def last_error(self, value: str | None) -> None:
        self._last_error = value
        self.errors.note("kiosk", value)

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
            self.start_vision()  # before device.started, which carries the model versions
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
        self.updates.recover()
        self.publisher.start()
        if calling_of(self.cfg).appointments.qr_camera:
            from device.qr_camera import QrCamera

            self.qr_camera = QrCamera(calling_of(self.cfg).appointments.qr_camera, self.appointments.redeem)
            self.qr_camera.start()
        threading.Thread(target=self._warm_up, name="warm-up", daemon=True).start()
        if self.line_client is not None:
            self.line_client.start()
        if self.line_owner is not None:
            self.line_owner.purge()
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
        if self.line_client is not None:
            self.line_client.stop()
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

    def start_vision(self) -> None:
        from device.vision.service import VisionService  # loads onnxruntime: only with [camera] enabled

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

    def recent_error(self) -> str | None:
        return self.reporter.recent_error()

    def status(self) -> dict[str, Any]:
        return self.reporter.status()

    def health_payload(self) -> bytes:
        return self.reporter.health_payload()

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
            if self.updates.restart_pending and self.restart_hook is not None:
                self.publisher.wait_drained(30)  # update.result and cmd.result out first (else kept)
                self.updates.restart_pending = []
                self.restart_hook()
                return

    def handle_command(self, topic: str, payload: bytes) -> Outcome:
        """One command from ``cmd/<name>`` (device/commands.py: guard, handler, cmd.result)."""
        return self.runner.handle(topic, payload)

    # ------------------------------------------------------------------ misc

    def wait_stopped(self) -> None:
        while not self._stop.wait(1):
            pass

    def uptime(self) -> float:
        return self.clock.monotonic() - self.started_mono

    def sleep(self, s: float) -> None:
        time.sleep(s)
