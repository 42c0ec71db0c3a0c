"""A button pressed through the kernel's GPIO path on the virtual Pi, production pin factory.

What QEMU offers (found by hand first, hil/logs/vpi-gpio-pl061-line3.log): the ``virt`` board has one
GPIO controller, a PL061 (``gpiochip0``, 8 lines), and with ``acpi=off`` its power button is a
``gpio-key`` on line 3: ``system_powerdown`` on the monitor is a 100 ms high pulse on that line.
Debian's arm64 kernel has no ``gpio-sim``/``gpio-mockup``, so no other line can be driven from outside.

The step, as a technician would wire a kiosk whose ``ticket`` button sits on that line:
1. the guest's ``gpio-keys`` driver is unbound from line 3 (else the pulse powers the guest off);
2. a kiosk config with the seven required buttons on PL061 lines 0-6 (``ticket`` on 3) and the buzzer
   on 7, audio off (the board has no sound card), ``debounce_ms = 0``: QEMU's line does not bounce,
   and its pulse is a button pressed upside down: the rising edge reads as a release 100 ms before
   the press edge; under TCG load the two pin callbacks reach the kiosk's debouncer (which stamps an
   edge when its callback runs) less than the default 50 ms apart, and the press was dropped as
   bounce (seen in the first run: one ticket from two pulses). A finger's release comes after its
   press, so the default stays right for real buttons;
3. a drop-in runs the kiosk **without** ``--simulate``: gpiozero's lgpio pin factory on
   ``/dev/gpiochip0`` (group ``gpio`` by the first boot's udev rule). gpiozero accepts only a board
   that says it is a Raspberry Pi (a ``Revision`` line in /proc/cpuinfo, else ``PinUnknownPi``);
   the drop-in gives the kiosk process a Pi 4 B revision line by a read-only bind mount over
   /proc/cpuinfo: that is the one thing faked, everything from gpiozero down is the real path
   (gpiozero → lgpio → gpiochip character device → gpiolib → PL061 → QEMU);
4. two pulses; the kiosk's buttons are active low with pull-up, so each pulse's falling edge is the
   press: two ``ticket.issued`` events must reach the broker and the gateway with this device and
   office;
5. the drop-in removed and the scenario's simulated kiosk restarted for the steps that follow.
"""

from __future__ import annotations

import json
import time
import tomllib
from typing import Any

import tomli_w

from device.config_sections import OFFICER_BUTTONS
from provisioning.cloudinit import CONFIG_DIR, DATA_DIR, KIOSK_USER, VENV

LINES = {"next": 0, "recall": 1, "no_show": 2, "ticket": 3}  # ticket: the line QEMU drives
RATE_LINES = (4, 5, 6)
BUZZER_LINE = 7
GPIO_CONFIG = f"{CONFIG_DIR}/kiosk-gpio.toml"
DROPIN = "/etc/systemd/system/motcua-kiosk.service.d/20-gpio.conf"
CPUINFO = "/etc/motcua-vpi-cpuinfo"
PI4_REVISION = "c03114"  # Raspberry Pi 4 Model B 4 GB (gpiozero's board table)
PRESSES = 2
UNBIND_KEYS = ("for d in /sys/bus/platform/drivers/gpio-keys/*; do n=$(basename $d); "
               "case $n in bind|unbind|module|uevent) ;; *) echo $n > "
               "/sys/bus/platform/drivers/gpio-keys/unbind;; esac; done")


def gpio_config(toml_text: str) -> str:
    """The kiosk's own config with every pin moved onto the PL061's 8 lines."""
    data = tomllib.loads(toml_text)
    scale = int(data.get("rating", {}).get("scale", 3))
    if len(RATE_LINES) < scale:
        raise ValueError(f"a {scale}-level rating needs more buttons than the PL061 has lines")
    pins = {name: LINES[name] for name in OFFICER_BUTTONS}
    pins |= {f"rate_{i}": RATE_LINES[i - 1] for i in range(1, scale + 1)}
    data["buttons"] = {**data.get("buttons", {}), "pins": pins, "debounce_ms": 0}
    data["leds"] = {"pwm": False}
    data["buzzer"] = {"pin": BUZZER_LINE}
    data["audio"] = {**data.get("audio", {}), "mode": "off"}
    return tomli_w.dumps(data)


def dropin() -> str:
    return ("[Service]\n"
            "# Virtual Pi GPIO step only (hil/vpi/gpio_step.py): the production pin path on PL061.\n"
            "ExecStart=\n"
            f"ExecStart={VENV}/bin/motcua-kiosk run --config {GPIO_CONFIG} --data-dir {DATA_DIR}\n"
            "Environment=GPIOZERO_PIN_FACTORY=lgpio\n"
            f"BindReadOnlyPaths={CPUINFO}:/proc/cpuinfo\n")


def _status(sc: Any) -> dict:
    from hil.vpi.machine import guest_http
    from hil.vpi.run import KIOSK_HTTP

    out = sc.vm.run(guest_http("GET", f"{KIOSK_HTTP}/api/status"), timeout=120, check=False).strip()
    code, _, body = out.partition(" ")
    return json.loads(body) if code == "200" else {}


def _restart(sc: Any, simulate: bool) -> float:
    from hil.vpi.run import RESTART_TIMEOUT_S, wait

    pid = sc.main_pid()
    t0 = time.monotonic()
    sc.vm.run("systemctl daemon-reload && systemctl restart --no-block motcua-kiosk")

    def up() -> bool:
        s = sc.service()
        return (s.get("ActiveState") == "active" and s.get("MainPID") not in ("0", pid)
                and _status(sc).get("simulate") is simulate and sc.online())

    try:
        wait(up, RESTART_TIMEOUT_S, f"kiosk active with simulate={simulate}", 3)
    except AssertionError:
        log = sc.vm.run("journalctl -u motcua-kiosk --no-pager -n 30", check=False)
        raise AssertionError(f"kiosk not back with simulate={simulate}: {log[-1500:]}") from None
    return time.monotonic() - t0


def gpio_press_step(sc: Any) -> str:
    from hil.vpi.run import DEVICE, OFFICE

    vm = sc.vm
    vm.run(UNBIND_KEYS)
    kiosk_toml = vm.run(f"cat {CONFIG_DIR}/kiosk.toml")
    vm.put_file(GPIO_CONFIG, gpio_config(kiosk_toml).encode())
    vm.put_file(DROPIN, dropin().encode())
    vm.run(f"chown {KIOSK_USER}:{KIOSK_USER} {GPIO_CONFIG} && chmod 0600 {GPIO_CONFIG} && "
           f"(cat /proc/cpuinfo; printf 'Revision\\t: {PI4_REVISION}\\n') > {CPUINFO}")
    chip = vm.run("ls -l /dev/gpiochip0; cat /sys/bus/gpio/devices/gpiochip0/label 2>/dev/null", check=False)
    start_s = _restart(sc, simulate=False)
    try:
        return _press(sc, start_s, chip) + f"; {DEVICE}@{OFFICE}"
    finally:
        vm.run(f"rm -f {DROPIN}")
        sc.verdict.figures["GPIO step: back to --simulate"] = f"{_restart(sc, simulate=True):.0f} s"


def _press(sc: Any, start_s: float, chip: str) -> str:
    from hil.vpi.run import DEVICE, OFFICE, wait

    b = sc.watcher
    with b.lock:
        n = len(b.events)
    accepted = sc.procs["gateway"].stats()["accepted"]
    claimed = sc.vm.run("ls -l /proc/$(systemctl show -p MainPID --value motcua-kiosk)/fd "
                        "| grep -c /dev/gpiochip0", check=False).strip()
    assert claimed not in ("", "0"), f"the kiosk holds no /dev/gpiochip0 descriptor: {claimed}"
    t0 = time.monotonic()
    for i in range(PRESSES):
        sc.vm.power_button()

        def issued(ev: list[dict], want: int = i + 1) -> bool:
            return len({e["event_id"] for e in ev[n:] if e["type"] == "ticket.issued"}) >= want

        b.wait(issued, 180, f"ticket.issued #{i + 1} from the PL061 line")
    press_s = (time.monotonic() - t0) / PRESSES
    with b.lock:  # one per event (QoS 1 may deliver one twice)
        new = list({e["event_id"]: e for e in b.events[n:] if e["type"] == "ticket.issued"}.values())
    assert len(new) == PRESSES, f"{len(new)} tickets from {PRESSES} pulses"
    bad = [e for e in new if e.get("device_id") != DEVICE or e.get("office_code") != OFFICE]
    assert not bad, f"wrong identity: {bad[0]}"
    numbers = [e["data"]["ticket_no"] for e in new]
    assert len(set(numbers)) == len(numbers), f"ticket number twice: {numbers}"
    gw = sc.procs["gateway"]
    wait(lambda: gw.stats()["accepted"] >= accepted + len(new), 180, "gateway accepted the GPIO tickets", 2)
    sc.verdict.figures["GPIO step"] = (f"kiosk on lgpio up in {start_s:.0f} s; press → event at the broker "
                                       f"{press_s:.1f} s each (TCG)")
    chip = " ".join(chip.split()[-1:])  # the chip's label (9030000.pl061)
    return (f"{len(new)} ticket.issued from {chip} line 3 via gpiozero/lgpio (no --simulate), "
            f"numbers {numbers}, gateway accepted +{gw.stats()['accepted'] - accepted}")
