"""The kiosk's update controller: the ``apply_update`` command, the probation of a new release and
its outcome as an ``update.result`` event. Verifying, staging and switching releases is
device/updates/ (A/B release folders, ``current`` symlink); this module decides, for a running kiosk,
whether the switched release is healthy.

One update, in order:

1. ``handle_apply_update`` verifies the signed bundle, prechecks its config overlay against the local
   file and switches ``current``; then it calls :meth:`UpdateController.health_check`.
2. The health check runs the new release's effective config and models in child processes, then
   switches this kiosk to it in process (device/reload.py) and requires the database's integrity and
   a broker connection within ``UPDATE_BROKER_WAIT_S``. If anything fails, the previous config is put
   back (a failure to put it back is reported too, never swallowed) and device/updates rolls back.
3. Sections that apply only at start (or new kiosk code) make the applied update a *restart trial*:
   the kiosk re-executes itself once the results are published (``restart_pending``), and the
   restarted kiosk confirms or rolls back in :meth:`UpdateController.recover` at start.

What the in-process switch did travels from step 2 to the ``update.result`` of step 1 in
``_switch``, set by the health check and consumed by :meth:`cmd_apply_update` of the same command.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from contract.payloads import CommandRequest, EventType
from device.config import KioskConfig
from device.updates import handle_apply_update, recover_interrupted, release_dir
from device.updates.apply import begin_restart_trial, confirm_restart_trial, in_restart_trial
from device.updates.health import check_release, precheck_config
from device.updates.slots import code_changed

if TYPE_CHECKING:
    from device.app import Kiosk

log = logging.getLogger("motcua.kiosk.updates")
UPDATE_BROKER_WAIT_S = 30.0  # health check: the publisher must be connected within this


@dataclass
class _Switch:
    """What the in-process switch to a new release did (for ``update.result``)."""

    note: str = ""
    restart: list[str] = field(default_factory=list)  # sections of the release that need a restart


class UpdateController:
    def __init__(self, kiosk: Kiosk) -> None:
        self.kiosk = kiosk
        self.recovered: dict | None = None  # set by the CLI when it rolled back a probation release
        self._switch = _Switch()
        self.restart_pending: list[str] = []  # an applied release waits for the kiosk to re-execute

    # ------------------------------------------------------------------ at start

    def recover(self) -> None:
        """An update left on probation by a crash or power cut is rolled back; a restart trial (this
        start is the restarted kiosk) is confirmed or rolled back in the background."""
        k = self.kiosk
        try:
            if in_restart_trial(k.data_dir):
                threading.Thread(target=self.confirm_restart_trial, name="update-trial", daemon=True).start()
                return
            data = self.recovered or recover_interrupted(k.data_dir)
            self.recovered = None
        except Exception as exc:  # update bookkeeping must not stop the kiosk: say why, go on
            log.exception("update recovery failed")
            k.last_error = f"update recovery: {exc}"[:200]
            return
        if data:
            k.engine.emit(EventType.UPDATE_RESULT, data)

    def confirm_restart_trial(self) -> None:
        """Restarted on a new release: healthy (database, broker within the wait) ends the probation;
        otherwise roll back now and restart on the previous release."""
        k = self.kiosk
        problem = self.components_problem()
        if problem is None:
            confirm_restart_trial(k.data_dir)
            log.info("update confirmed after restart")
            return
        data = recover_interrupted(k.data_dir)  # the trial started: this swaps back
        if data:
            data = data | {"message": f"{problem}; {data['message']}"[:1000]}
            k.engine.emit(EventType.UPDATE_RESULT, data)  # kept in the outbox across the restart
        k.last_error = f"update rolled back after restart: {problem}"[:200]
        if k.restart_hook is not None:
            k.restart_hook()

    # ------------------------------------------------------------------ the command

    def cmd_apply_update(self, req: CommandRequest) -> tuple[bool, str, dict]:
        k = self.kiosk
        keys = k.cfg.updates.raw_keys()
        self._switch = _Switch()
        data = handle_apply_update(
            dict(req.args),
            data_dir=k.data_dir,
            trusted_keys=keys,
            health_check=self.health_check,
            office_code=k.cfg.device.office_code,
            cmd_id=req.cmd_id,
            precheck=lambda staged: precheck_config(k.cfg.path, staged),
        )
        switch, self._switch = self._switch, _Switch()
        message = str(data.get("message", ""))
        if data.get("outcome") == "applied" and switch.note:
            message += "; " + switch.note
            if switch.restart and k.restart_hook is not None:
                begin_restart_trial(k.data_dir, req.cmd_id)  # the restarted kiosk must confirm
                message += f"; restarting the kiosk to apply: {', '.join(switch.restart)}"
                self.restart_pending = switch.restart
            data = data | {"message": message[:1000]}
        out = k.engine.emit(EventType.UPDATE_RESULT, data)
        k.publisher.kick.set()
        ok = data.get("outcome") == "applied"
        return ok and out.ok, message[:1000], {"outcome": data.get("outcome")}

    def health_check(self) -> tuple[bool, str]:
        """After ``current`` switched: the new release's effective config and models must pass in child
        processes; then this kiosk switches to it in process and must stay healthy (database integrity,
        broker connected). If not, the previous config is put back before the rollback is reported."""
        k = self.kiosk
        release = release_dir(k.data_dir)
        if release is not None and k.cfg.path:
            problem = check_release(k.cfg.path, release)
            if problem:
                return False, problem
        previous = k.cfg
        try:
            note, restart = k.reloader.apply(k.reloader.effective_config())
        except Exception as exc:
            log.exception("switching to the new release's config failed")
            note, restart, problem = "", [], f"the kiosk could not switch to the new config: {exc}"
        else:
            problem = self.components_problem()
        if problem is None and code_changed(k.data_dir):  # new kiosk code runs only after a restart
            restart = [*restart, "kiosk code"]
        if problem:
            return False, self._restore(previous, problem)
        self._switch = _Switch(note, restart)
        return True, "healthy"

    def _restore(self, previous: KioskConfig, problem: str) -> str:
        """Put the previous config back; a failure to do so is part of the reported problem."""
        k = self.kiosk
        try:
            k.reloader.apply(previous)
        except Exception as exc:  # the rollback is still reported; a failed config restore must be seen
            log.exception("restoring the previous config failed")
            k.last_error = f"config restore after update failed: {exc}"[:200]
            problem = f"{problem}; restoring the previous config failed: {exc}"
        return problem

    def components_problem(self) -> str | None:
        """None when the database passes its integrity check and the broker is connected in time."""
        k = self.kiosk
        try:
            if not k.store.quick_check():
                return "kiosk database failed its integrity check"
        except Exception as exc:
            return f"kiosk database check raised {exc}"
        deadline = time.monotonic() + UPDATE_BROKER_WAIT_S
        while not k.publisher.connected:
            if time.monotonic() > deadline:
                return f"not connected to the broker within {UPDATE_BROKER_WAIT_S:.0f} s"
            time.sleep(0.2)
        return None
