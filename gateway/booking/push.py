"""Sending each office's appointment list to its kiosks: the signed ``load_appointments`` command.

Why a command: it is already signed (Ed25519, gateway/commands.py), bound to one office and device,
refused when stale or replayed, and answered by a ``cmd.result``, so a kiosk never takes a list
from anyone but the gateway and the operator sees which kiosk has it. Its args are
``contract.payloads.AppointmentDay``: the whole list of one day, replacing the kiosk's earlier
list of that day (a cancel is simply absent from the next list).

When: every ``push_interval_s`` the lists of today and tomorrow go to every registered kiosk of
every booking office (so a kiosk switched on in the morning has the day's list before the office
opens, within one interval of connecting), and within about a second after each booking or
cancel of those days. Once a kiosk holds a day's list it redeems codes without the gateway
(docs/kiosk.md#appointments). Bookings made while a kiosk is unreachable reach it at the next push.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from contract.payloads import AppointmentDay
from gateway.booking import store as bs
from gateway.commands import IngestNotRunning, issue_command

log = logging.getLogger("motcua.gateway.booking")
DEBOUNCE_S = 1.0


class BookingPusher:
    def __init__(self, state: Any, service: Any) -> None:
        self.state, self.service = state, service
        self._dirty: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pushed = 0  # commands published (for tests and /metrics readers)
        service.changed = self.changed

    def changed(self, office: str, day: str) -> None:
        with self._lock:
            self._dirty.add((office, day))
        self._wake.set()

    def start(self) -> None:
        if not self.service.settings.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="booking-push", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        interval = self.service.settings.push_interval_s
        self._stop.wait(2.0)  # let ingest connect first
        self.push_all()
        while not self._stop.is_set():
            woke = self._wake.wait(interval)
            if self._stop.is_set():
                return
            if not woke:
                self.push_all()
                continue
            self._stop.wait(DEBOUNCE_S)  # gather a burst of bookings into one push
            self._wake.clear()
            with self._lock:
                dirty, self._dirty = self._dirty, set()
            near = self._near_days()
            for office, day in sorted(dirty):
                if day in near:
                    self.push(office, day)

    def _near_days(self) -> set[str]:
        today = self.service.now_local().date()
        return {today.isoformat(), (today + timedelta(days=1)).isoformat()}

    def push_all(self) -> None:
        for office in self.service.settings.offices:
            for day in sorted(self._near_days()):
                self.push(office, day)

    def push(self, office: str, day: str) -> int:
        """Send ``day``'s list to every registered kiosk of ``office``; returns how many were sent."""
        args = AppointmentDay(service_day=day, appointments=bs.day_list(self.service.engine, office, day))
        payload = args.model_dump(mode="json")
        sent = 0
        for dev in self.state.store.devices():
            if dev["office_code"] != office or not dev.get("registered", True):
                continue
            try:
                issue_command(self.state, dev["device_id"], office, "load_appointments", payload, "booking")
                sent += 1
            except IngestNotRunning:
                log.warning("appointments of %s %s not pushed: no MQTT connection", office, day)
                return sent
        self.pushed += sent
        return sent
