"""Simulated citizens and officers pressing the kiosks' buttons through ``POST /api/sim/press/<button>``.

    python -m device.simulate.citizens --kiosk http://127.0.0.1:8101 --kiosk http://127.0.0.1:8102 \\
        [--rate-per-min 2] [--service-s 15 60] [--seed 1] [--duration S]
    python -m device.simulate.citizens --entrance http://127.0.0.1:8107 \\
        --kiosk http://127.0.0.1:8101#land --kiosk http://127.0.0.1:8103#land,civil …

Shared lines (docs/kiosk.md#one-queue-per-service-field-across-counters): with ``--entrance``, a
kiosk given as ``URL#field,field`` is a counter calling from those fields' lines; its arrivals take
their ticket at the entrance kiosk (``/api/line/ticket/<field>/<kind>``), in one of its fields, and
its officer calls when the entrance shows someone waiting in them.

Per kiosk: citizens arrive at random (Poisson, busier mid-morning and mid-afternoon like an office
day, compressed to a few minutes), take a ticket; the officer calls the next one, serves for a
random time, some citizens do not show up (no-show after a while, sometimes a recall first); most
rate the service, skewed positive, some "Không hài lòng" with a reason chosen on the touch screen.
"""

from __future__ import annotations

import argparse
import math
import random
import threading
import time
from dataclasses import dataclass

import httpx

REASONS = ["waited_too_long", "staff_attitude", "unclear_guidance", "too_many_documents", "other"]


@dataclass
class Params:
    rate_per_min: float
    service_s: tuple[float, float]
    no_show_p: float = 0.07
    rate_p: float = 0.85
    level_weights_3: tuple[float, ...] = (0.12, 0.30, 0.58)  # rate_1 (least satisfied) .. rate_3
    reason_p: float = 0.8
    day_s: float = 600.0  # one simulated office day every 10 minutes (load curve period)
    priority_share: float = 0.0  # share of arrivals who press the priority button (kiosks that have one)


class CounterSim:
    def __init__(self, base: str, params: Params, rng: random.Random, stop: threading.Event,
                 entrance: str | None = None) -> None:
        base, _, fields = base.partition("#")
        self.base, self.p, self.rng, self.stop = base.rstrip("/"), params, rng, stop
        self.entrance = entrance.rstrip("/") if entrance and fields else None
        self.fields = fields.split(",")
        self.http = httpx.Client(timeout=30)
        self.presses = 0
        self.errors = 0

    def press(self, button: str) -> dict | None:
        try:
            r = self.http.post(f"{self.base}/api/sim/press/{button}")
            self.presses += 1
            return r.json()
        except (httpx.HTTPError, ValueError):
            self.errors += 1
            return None

    def status(self) -> dict | None:
        try:
            return self.http.get(f"{self.base}/api/status").json()
        except (httpx.HTTPError, ValueError):
            return None

    def load_factor(self, t: float) -> float:
        """Two daily peaks (mid-morning, mid-afternoon), never zero."""
        phase = (t % self.p.day_s) / self.p.day_s
        return 0.35 + 0.65 * abs(math.sin(2 * math.pi * phase))

    def run(self) -> None:
        t0 = time.monotonic()
        next_arrival = t0 + self.rng.expovariate(self.p.rate_per_min / 60)
        serving_until: float | None = None
        no_show_at: float | None = None
        recalled = False
        scale = 3
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_arrival:
                self.arrive()
                rate = self.p.rate_per_min / 60 * self.load_factor(now - t0)
                next_arrival = now + self.rng.expovariate(rate)
            if serving_until is None and no_show_at is None:
                st = self.status()
                if st is None:
                    self.stop.wait(2)
                    continue
                scale = len(st.get("rating_levels", [])) or 3
                if self.waiting(st) > 0:
                    serving_until, no_show_at, recalled = self._called(self.press("next"), now)
            elif no_show_at is not None:
                if not recalled and now > no_show_at - 5:
                    self.press("recall")
                    recalled = True
                if now >= no_show_at:
                    self.press("no_show")
                    no_show_at = None
            elif now >= serving_until:
                # The officer's next completes the visit (its rating prompt opens) and calls the next.
                out = self.press("next")
                serving_until, no_show_at, recalled = self._called(out, now)
                if out and out.get("prompt_label") and self.rng.random() < self.p.rate_p:
                    self.stop.wait(self.rng.uniform(1.0, 3.0))  # the citizen reads the prompt
                    self.rate(scale)
            self.stop.wait(0.25)

    def arrive(self) -> None:
        priority = self.rng.random() < self.p.priority_share
        if self.entrance is None:
            self.press("priority" if priority else "ticket")
            return
        field, kind = self.rng.choice(self.fields), "priority" if priority else "walk_in"
        try:
            self.http.post(f"{self.entrance}/api/line/ticket/{field}/{kind}")
            self.presses += 1
        except httpx.HTTPError:
            self.errors += 1

    def waiting(self, st: dict) -> int:
        """Citizens this counter could call: its own line, or its fields' lines at the entrance."""
        if self.entrance is None:
            return int(st.get("waiting", 0))
        try:
            lines = self.http.get(f"{self.entrance}/api/status").json()["line"]["fields"]
        except (httpx.HTTPError, ValueError, KeyError):
            self.errors += 1
            return 0
        return sum(f["waiting"] for f in lines if f["code"] in self.fields)

    def _called(self, out: dict | None, now: float) -> tuple[float | None, float | None, bool]:
        """After a ``next``: (serving_until, no_show_at, recalled) for the citizen it called, if any."""
        if not out or not out.get("called_label"):
            return None, None, False
        if self.rng.random() < self.p.no_show_p:
            return None, now + self.rng.uniform(8, 20), False
        return now + self.rng.uniform(*self.p.service_s), None, False

    def rate(self, scale: int) -> None:
        weights = self.p.level_weights_3 if scale == 3 else (0.05, 0.08, 0.17, 0.3, 0.4)
        level = self.rng.choices(range(1, scale + 1), weights=weights)[0]
        out = self.press(f"rate_{level}")
        if out and out.get("needs_reason"):
            time.sleep(self.rng.uniform(1, 4))
            if self.rng.random() < self.p.reason_p:
                try:
                    self.http.post(f"{self.base}/api/rating/reason/{self.rng.choice(REASONS)}")
                except httpx.HTTPError:
                    self.errors += 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiosk", action="append", required=True,
                    help="kiosk base URL (repeat); URL#field,field: a counter on shared lines")
    ap.add_argument("--entrance", default=None, help="the entrance kiosk of shared lines (base URL)")
    ap.add_argument("--rate-per-min", type=float, default=2.0, help="mean arrivals per minute per kiosk")
    ap.add_argument("--service-s", type=float, nargs=2, default=(15.0, 60.0), metavar=("MIN", "MAX"))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--priority-share", type=float, default=0.0, help="share of priority tickets (0-1)")
    ap.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    a = ap.parse_args(argv)
    master = random.Random(a.seed)
    stop = threading.Event()
    params = Params(a.rate_per_min, tuple(a.service_s), priority_share=a.priority_share)
    sims = [CounterSim(url, params, random.Random(master.random()), stop, a.entrance) for url in a.kiosk]
    threads = [threading.Thread(target=s.run, name=s.base, daemon=True) for s in sims]
    for t in threads:
        t.start()
    print(f"simulating citizens at {len(sims)} kiosk(s), {a.rate_per_min}/min each", flush=True)
    try:
        end = time.monotonic() + a.duration if a.duration else None
        while not stop.is_set():
            stop.wait(1)
            if end and time.monotonic() >= end:
                break
    except KeyboardInterrupt:
        pass
    stop.set()
    for t in threads:
        t.join(10)
    print(f"presses {sum(s.presses for s in sims)}, errors {sum(s.errors for s in sims)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
