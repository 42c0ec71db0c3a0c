"""Simulated citizens on the public booking page: book through the form as a phone would, then come
to the office and type their code on a kiosk's touch API; some cancel, some never come.

Runs as a thread of ``make demo`` against office 03390 (Bình Lư). Every booking goes through
``POST /dat-lich`` (the page's own form) and the code is read from the page it redirects to, so the
demo exercises what a citizen uses. All simulated citizens share 127.0.0.1, so the demo raises
``[booking] per_client_per_hour`` (demo/run.py); a real office keeps the low default.
"""

from __future__ import annotations

import random
import re
import threading
from typing import Any

import httpx

CODE_RE = re.compile(r'<p class="code"[^>]*>([A-Z0-9]{6})</p>')


class BookingCitizens:
    def __init__(self, web: str, office: str, kiosks: list[str], rng: random.Random, stop: threading.Event,
                 every_s: float = 20.0) -> None:
        self.web, self.office, self.kiosks, self.rng, self.stop = web, office, kiosks, rng, stop
        self.every_s = every_s
        self.http = httpx.Client(timeout=30, follow_redirects=True)
        self.booked = self.cancelled = self.redeemed = self.errors = 0

    def _free_slot(self, field: str, day: str) -> str | None:
        r = self.http.get(f"{self.web}/api/v1/booking/slots",
                          params={"office": self.office, "service_field": field, "day": day})
        if r.status_code != 200:
            return None
        free = [s["slot"] for s in r.json() if s["free"] > 0]
        return free[0] if free else None

    def book_one(self) -> str | None:
        offices = self.http.get(f"{self.web}/api/v1/booking/offices").json()
        office = next((o for o in offices if o["code"] == self.office), None)
        if office is None:
            return None
        field = self.rng.choice(sorted(office["fields"]))
        if not office["days"]:
            return None
        day = office["days"][0]  # today, at the demo's pace
        slot = self._free_slot(field, day)
        if slot is None:
            return None
        page = self.http.post(f"{self.web}/dat-lich", data={"office": self.office, "field": field,
                                                             "day": day, "slot": slot})
        m = CODE_RE.search(page.text)
        if page.status_code != 200 or m is None:
            self.errors += 1
            return None
        self.booked += 1
        return m.group(1)

    def arrive(self, code: str) -> dict[str, Any] | None:
        kiosk = self.rng.choice(self.kiosks)
        r = self.http.post(f"{kiosk}/api/appointment", json={"code": code})
        if r.status_code == 200:
            self.redeemed += 1
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else None

    def run(self) -> None:
        wait = self.rng.uniform(1, 3)  # the first citizen books at once, then about every every_s
        while not self.stop.wait(wait):
            wait = min(3 * self.every_s, self.rng.expovariate(1 / self.every_s))
            try:
                code = self.book_one()
                if code is None:
                    continue
                fate = self.rng.random()
                if fate < 0.1:  # changes their mind
                    self.http.post(f"{self.web}/dat-lich/huy", data={"code": code})
                    self.cancelled += 1
                elif fate < 0.2:
                    continue  # never comes: a no-show
                else:
                    threading.Timer(self.rng.uniform(5, 15), self.arrive, args=(code,)).start()
            except httpx.HTTPError:
                self.errors += 1
