"""Two counters calling from one shared line never get the same ticket: through kill -9 of any kiosk
(the entrance that owns the line, or either counter) at random moments, and with the uplink cut
(the broker stopped for some rounds while the LAN stays up). Real kiosk processes, real Mosquitto."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict

import pytest

from hil.harness.wait import wait_for
from tests.device.kiosk_proc import KioskProc, Watcher
from tests.device.shared_lines import Office, typed

ROUNDS = 9
UPLINK_CUT = range(3, 6)  # rounds run with the broker stopped


def _presser(k: KioskProc, seen: list[str], stop: threading.Event, done: list[int]) -> None:
    while not stop.is_set():
        try:
            out = k.press("next", timeout=15)
        except Exception:
            time.sleep(0.05)  # this counter was killed, or is starting again
            continue
        if out.get("ok") and out.get("called_label"):
            seen.append(out["called_label"])
        done[0] += 1


def _restart(k: KioskProc) -> None:
    k.proc = None
    k.start()  # same ports: the counters know the entrance by its address


@pytest.mark.slow
def test_two_counters_one_line_kill9_any_kiosk_and_uplink_cut(tmp_path, mosquitto):
    rng = random.Random(20261205)
    watcher = Watcher(mosquitto.port)
    office = Office(tmp_path, mosquitto.url, {3: ["land"], 5: ["land"]}).start()
    seen: dict[int, list[str]] = {3: [], 5: []}
    issued: list[str] = []
    try:
        for _ in range(30):
            issued.append(office.ticket("land", rng.choice(["walk_in"] * 4 + ["priority"]))["label"])
        for rnd in range(ROUNDS):
            if rnd == UPLINK_CUT.start:
                mosquitto.stop()
            if rnd == UPLINK_CUT.stop:
                mosquitto.start()
            for _ in range(3):
                out = _try_ticket(office, rng)
                if out is not None:
                    issued.append(out)
            stop, done = threading.Event(), [0]
            threads = [threading.Thread(target=_presser, args=(office.counters[n], seen[n], stop, done),
                                        daemon=True) for n in (3, 5)]
            for t in threads:
                t.start()
            target, end = rng.randint(1, 4), time.monotonic() + 60
            while done[0] < target and time.monotonic() < end:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.2))
            victim = rng.choice([office.entrance, office.counters[3], office.counters[5]])
            victim.kill9()
            _restart(victim)
            stop.set()
            for t in threads:
                t.join(30)
        # Every counter's request left pending by a kill is resolved by itself after the restart.
        for n in (3, 5):
            counter = office.counters[n]
            wait_for(lambda c=counter: not c.status()["line"]["pending"], 60, f"counter {n} resolved")
        wait_for(lambda: office.entrance.status()["outbox_depth"] == 0, 120, "entrance outbox drained")
    finally:
        office.stop()
        watcher.close()
    assert len(seen[3]) + len(seen[5]) >= ROUNDS, seen
    for n in (3, 5):
        assert len(seen[n]) == len(set(seen[n])), f"counter {n} was given a ticket twice: {seen[n]}"
    assert not set(seen[3]) & set(seen[5]), "two counters were given the same ticket"
    calls: dict[int, list[int]] = defaultdict(list)
    for e in {e["event_id"]: e for e in typed(watcher, "ticket.called")}.values():
        calls[e["data"]["ticket_no"]].append(e["data"]["serving_counter"])
    assert all(len(v) == 1 for v in calls.values()), f"a ticket was called twice: {calls}"
    by_label = {e["data"]["label"]: e["data"]["ticket_no"] for e in typed(watcher, "ticket.issued")}
    for n in (3, 5):  # what each counter showed is what the entrance recorded for it
        assert all(calls[by_label[label]] == [n] for label in seen[n])
    unique = {e["event_id"]: e for e in typed(watcher, "ticket.issued")}.values()
    numbers = [e["data"]["ticket_no"] for e in unique]
    assert len(numbers) == len(set(numbers)), "a number was issued twice"
    assert set(issued) <= set(by_label), "a ticket acknowledged at the entrance never reached the gateway"


def _try_ticket(office: Office, rng: random.Random) -> str | None:
    try:
        out = office.ticket("land", rng.choice(["walk_in", "walk_in", "priority"]))
    except Exception:
        return None
    return out.get("label") if out.get("ok") else None
