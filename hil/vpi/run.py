"""``make vpi``: a technician's whole job on a virtual Raspberry Pi, judged like a real one.

    python -m hil.vpi.run [--keep] [--skip-update]

1. Image: the cached Debian 12 arm64 image (hil/vpi/build_image.py builds it on a cache miss).
2. Provision: a CA, Mosquitto with mTLS from ``motcua-provision mosquitto-conf``, a gateway on the
   host's loopback, ``motcua-provision device new`` with the kiosk wheel built from this checkout
   (``pip wheel . --no-deps``), ``motcua-provision flash`` onto a per-run copy of the image.
3. First boot under ``qemu-system-aarch64 -M virt`` (TCG): cloud-init applies the bundle, shreds the
   key from the boot partition, installs the kiosk offline, systemd starts ``motcua-kiosk.service``
   (Type=notify) which connects over mTLS through qemu's ``guestfwd``; boot-to-online is timed.
4. Buttons: QEMU's ``virt`` board has one PL061 GPIO controller with 8 lines and no Pi header, and
   Debian's arm64 kernels build neither ``gpio-sim`` nor ``gpio-mockup``; only line 3 (the power
   button) can be driven from outside. The kiosk runs with ``--simulate`` (a systemd drop-in written
   by user-data, the only virtual-Pi difference) and S1-S5 press through its sim API, which drives
   gpiozero's mock pins: everything above the pin is the production path. One step
   (hil/vpi/gpio_step.py) runs it without ``--simulate`` and presses ``ticket`` on PL061 line 3
   through gpiozero/lgpio. Scenarios S1-S5 are hil/run.py's own.
5. Faults: kill -9 (systemd restarts it), SIGSTOP (the watchdog restarts it), power cut (qemu
   SIGKILLed right after acknowledged presses), network cut (the NIC's link set down, then up).
6. Signed code update into the inactive slot, applied; a broken one rolled back (both read back
   from the gateway's /api/v1/updates/{id}).
7. The display unit verified and its page fetched from the host (hil/vpi/display_step.py); last, a
   reboot into the read-only-root layout (hil/vpi/readonly_step.py).

Every step is PASS/FAIL with its time in one table (hil/verdict.py); exit status 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hil.run import (
    Broker,
    scenario_network_cut,
    scenario_officer,
    scenario_power_cut,
    scenario_reason,
    scenario_visit,
)
from hil.verdict import Verdict
from hil.vpi import build_image
from hil.vpi.display_step import display_step
from hil.vpi.gpio_step import gpio_press_step
from hil.vpi.machine import (
    BROKER_IP,
    Forwards,
    GuestError,
    VirtualPi,
    free_port,
    guest_http,
)
from hil.vpi.readonly_step import make_data_disk, readonly_root_step
from provisioning.cloudinit import CONFIG_DIR, DATA_DIR, VENV

ROOT = Path(__file__).resolve().parents[2]
OFFICE, COUNTER, DEVICE = "03390", 1, "k-03390-01"
KIOSK_HTTP = "http://127.0.0.1:8101"
BOOT_TIMEOUT_S = 1200
RESTART_TIMEOUT_S = 600
WATCHER_CN = "motcua.hil"
DROPIN = "/etc/systemd/system/motcua-kiosk.service.d/10-virtual-pi.conf"


def say(msg: str) -> None:
    print(f"[vpi {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def wait(cond, timeout: float, what: str, every: float = 1.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s: {what}")


class GuestRig:
    """hil.run's Rig, pressing through the kiosk's sim API inside the guest (via the agent)."""

    manual = False

    def __init__(self, vm: VirtualPi) -> None:
        self.vm = vm

    def _call(self, method: str, path: str) -> dict:
        # generous: a press commits to SQLite with fsync, slow when the host's disk is busy (a
        # 60 s timeout was hit once while a second card image was being flashed beside the run)
        out = self.vm.run(guest_http(method, f"{KIOSK_HTTP}{path}", timeout=240), timeout=300).strip()
        status, _, body = out.partition(" ")
        if status != "200":
            raise AssertionError(f"{method} {path} → {out[:300]}")
        return json.loads(body)

    def press(self, button: str) -> dict:
        return self._call("POST", f"/api/sim/press/{button}")

    def reason(self, code: str) -> None:
        self._call("POST", f"/api/rating/reason/{code}")

    def ask(self, text: str) -> None:
        raise AssertionError(f"a virtual Pi cannot {text}")


def virtual_pi_dropin() -> str:
    return ("[Service]\n"
            "# Virtual Pi only: the qemu 'virt' board has no Pi GPIO header (see hil/vpi/run.py).\n"
            "ExecStart=\n"
            f"ExecStart={VENV}/bin/motcua-kiosk run --simulate --config {CONFIG_DIR}/kiosk.toml "
            f"--data-dir {DATA_DIR}\n")


def add_dropin(user_data: Path) -> None:
    """Append a write_files entry to the bundle's user-data (YAML block scalar)."""
    body = "".join(f"      {line}\n" for line in virtual_pi_dropin().splitlines())
    with open(user_data, "a", encoding="utf-8") as fh:
        fh.write(f"write_files:\n  - path: {json.dumps(DROPIN)}\n    permissions: \"0644\"\n"
                 f"    content: |\n{body}")


class Scenario:
    def __init__(self, work: Path, image_dir: Path) -> None:
        self.work, self.image_dir = work, image_dir
        self.verdict = Verdict("VIRTUAL PI")
        self.procs: dict[str, Any] = {}
        self.vm: VirtualPi | None = None
        self.watcher: Broker | None = None

    # ------------------------------------------------------------------ host side

    def build_wheel(self, src: Path, out: Path) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                        "-w", str(out), str(src)], check=True, capture_output=True)
        (whl,) = out.glob("motcua_edge-*.whl")
        return whl

    def provision(self) -> str:
        from hil.harness.gateway import ADMIN_TOKEN, RunningGateway, gateway_settings
        from hil.harness.mosquitto import Mosquitto
        from provisioning.ca import GATEWAY_CN, open_ca
        from provisioning.cli import main as prov
        from provisioning.mosquitto_conf import write_broker_config
        from provisioning.signing import generate_key, load_key, public_raw

        w = self.work
        whl = self.build_wheel(ROOT, w / "wheels")
        ca_dir = w / "ca"
        assert prov(["ca", "init", "--dir", str(ca_dir)]) == 0
        ca = open_ca(ca_dir)
        port = free_port()
        names = [BROKER_IP, "127.0.0.1", "localhost"]

        def broker_config():  # the default registry ACL has one block per active device
            return write_broker_config(ca, w / "broker", port=port, bind="127.0.0.1",
                                       server_names=names, gateway_cns=(GATEWAY_CN, WATCHER_CN))

        files = broker_config()
        mq = Mosquitto(port=port, workdir=w / "mq", listener_conf=files.listener_conf)
        self.procs["broker"] = mq.start()
        for name, cn in (("gwid", GATEWAY_CN), ("watch", WATCHER_CN)):
            args = ["ca", "gateway-cert", "--dir", str(ca_dir), "--out", str(w / name), "--name", cn]
            assert prov(args) == 0
        gw_id = w / "gwid"
        self.procs["gateway"] = gw = RunningGateway(gateway_settings(
            w, f"mqtts://127.0.0.1:{port}",
            broker={"ca_file": str(gw_id / "ca.crt"), "cert_file": str(gw_id / "gateway.crt"),
                    "key_file": str(gw_id / "gateway.key")})).start()
        generate_key(w / "offline.key")
        self.update_key = load_key(w / "offline.key")
        pub = public_raw(self.update_key).hex()
        self.admin_token = ADMIN_TOKEN
        out = w / "device"
        assert prov(["device", "new", "--dir", str(ca_dir), "--office", OFFICE, "--counter", str(COUNTER),
                     "--device-id", DEVICE, "--broker", f"mqtts://{BROKER_IP}:8883", "--gateway", gw.base,
                     "--token", ADMIN_TOKEN, "--update-key", pub, "--wheel", str(whl),
                     "--out", str(out)]) == 0
        # As the technician does after `device new` (docs/provisioning): regenerate the broker's ACL so it
        # lists the new kiosk bound to its office, and reload Mosquitto.
        broker_config()
        mq.reload()
        add_dropin(out / "boot" / "user-data")
        card = w / "card.img"
        t0 = time.monotonic()
        assert prov(["flash", "--image", str(self.image_dir / "disk.img"), "--device", str(card),
                     "--bundle", str(out), "--yes"]) == 0
        watch = w / "watch"
        self.watcher = Broker(f"mqtts://127.0.0.1:{port}", OFFICE, DEVICE,
                              tls={"ca_certs": str(watch / "ca.crt"), "certfile": str(watch / "gateway.crt"),
                                   "keyfile": str(watch / "gateway.key")})
        make_data_disk(w / "data.img")
        self.vm = VirtualPi(self.image_dir, card, w, Forwards(port, gw.port), data_disk=w / "data.img")
        return f"{whl.name}; device {DEVICE} registered; flashed + verified in {time.monotonic() - t0:.0f} s"

    def fleet_row(self) -> dict:
        rows = {d["device_id"]: d for d in self.procs["gateway"].ops.get("/api/v1/fleet").json()}
        return rows.get(DEVICE, {})

    def online(self) -> bool:
        return self.fleet_row().get("state") == "online"

    # ------------------------------------------------------------------ guest steps

    def boot_to_online(self, key: str) -> str:
        vm = self.vm
        t0 = time.monotonic()
        vm.start()
        agent_s = vm.wait_agent(BOOT_TIMEOUT_S)
        say(f"guest agent up after {agent_s:.0f} s; waiting for cloud-init and the kiosk")
        wait(self._online_progress, BOOT_TIMEOUT_S, "kiosk online at the gateway", 5)
        total = time.monotonic() - t0
        self.verdict.figures[key] = f"{total:.0f} s (guest agent up after {agent_s:.0f} s)"
        return f"online at the gateway {total:.0f} s after power-on"

    def _online_progress(self) -> bool:
        """Online at the gateway and active under systemd; says where the boot is every ~30 s."""
        if self.online() and self.kiosk_active():
            return True
        now = time.monotonic()
        if now - getattr(self, "_said_at", 0.0) >= 30:
            self._said_at = now
            try:
                st = self.vm.run("cloud-init status 2>&1 | tail -1; systemctl is-active motcua-kiosk; "
                                 "ps -eo etimes,args --sort=-pcpu | sed -n 2,3p | cut -c1-100",
                                 timeout=60, check=False)
                say("  guest: " + " | ".join(line.strip() for line in st.splitlines()))
            except GuestError as exc:
                say(f"  guest: {exc}")
        return False

    def service(self) -> dict[str, str]:
        out = self.vm.run("systemctl show motcua-kiosk -p ActiveState -p SubState -p MainPID -p NRestarts "
                          "-p Type -p User -p WatchdogUSec", timeout=60)
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def kiosk_active(self) -> bool:
        try:
            return self.service().get("ActiveState") == "active"
        except GuestError:
            return False

    def first_boot_checks(self) -> str:
        vm = self.vm
        vm.run("test ! -e /boot/firmware/motcua/device.key")  # shredded from the FAT partition
        owner = vm.run(f"stat -c %U:%a {CONFIG_DIR}/device.key").strip()
        assert owner == "motcua:600", owner
        status = vm.run("cloud-init status --long", check=False)
        svc = self.service()
        assert svc.get("Type") == "notify" and svc.get("User") == "motcua", svc
        score = vm.run("systemd-analyze security motcua-kiosk.service | tail -1", check=False).strip()
        self.verdict.figures["systemd-analyze security (guest)"] = score
        ver = vm.run(f"{VENV}/bin/python -c 'import device; print(device.__version__)'").strip()
        cloud = " ".join(line.strip() for line in status.splitlines() if line.startswith("status"))
        self.verdict.figures["display unit (guest)"] = self.display_unit()
        self.verdict.figures["kernel GPIO (guest)"] = vm.run(
            "uname -r; modinfo -n gpio-sim gpio-mockup 2>&1; ls /dev/gpiochip*; "
            "cat /sys/bus/gpio/devices/gpiochip*/of_node/compatible 2>/dev/null", check=False
        ).replace("\0", " ").replace("\n", "; ").strip()
        return f"key shredded, {owner}; {cloud}; kiosk {ver} Type=notify as motcua; security {score}"

    def display_unit(self) -> str:
        """The Chromium kiosk display unit is installed and enabled by the first boot; the test image
        has no display stack (cage, chromium), so systemd skips it on its conditions."""
        out = self.vm.run("systemctl is-enabled motcua-display.service; systemctl show motcua-display "
                          "-p ConditionResult -p ActiveState", check=False)
        got = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        enabled = out.splitlines()[0].strip() if out.strip() else ""
        assert enabled == "enabled", f"motcua-display.service not enabled: {out}"
        return f"enabled; {got.get('ActiveState')} (condition met: {got.get('ConditionResult')})"

    def events_at_gateway(self) -> str:
        b = self.watcher
        with b.lock:
            evs = list(b.events)
        assert evs, "no events"
        bad = [e for e in evs if e.get("device_id") != DEVICE or e.get("office_code") != OFFICE]
        assert not bad, f"wrong identity on {len(bad)} events: {bad[0]}"
        row = self.fleet_row()
        assert row.get("office_code") == OFFICE and row.get("registered"), row
        stats = self.procs["gateway"].stats()
        assert stats["accepted"] >= len({e["event_id"] for e in evs}), stats
        return f"{len(evs)} events from {DEVICE}@{OFFICE}; gateway accepted {stats['accepted']}"

    def vision(self) -> str:
        """Both models on arm64 (guest, the kiosk's venv) vs x86-64 (host) on the same input tensors."""
        from hil.vpi import vision_probe

        frame = ROOT / "tests" / "vision" / "data" / "astronaut_640x480.jpg"
        inputs = vision_probe.make_inputs(frame)
        (self.work / "vision-inputs.npz").write_bytes(inputs)
        host = vision_probe.probe(self.work / "vision-inputs.npz", frame)
        self.vm.put_file("/tmp/vision-inputs.npz", inputs)
        self.vm.put_file("/tmp/frame.jpg", frame.read_bytes())
        out = self.vm.run(f"cd /tmp && {VENV}/bin/python -P -m hil.vpi.vision_probe /tmp/vision-inputs.npz "
                          "/tmp/frame.jpg", timeout=600)
        guest = json.loads(out.strip().splitlines()[-1])
        ok, lines = vision_probe.compare(host, guest)
        for line in lines:
            say("  " + line)
        self.verdict.figures["vision arm64 vs x86-64"] = "; ".join(lines)
        assert ok, f"outputs differ by more than {vision_probe.TOLERANCE}: {lines}"
        return f"onnxruntime {guest['onnxruntime']} on {guest['machine']}: outputs within 1e-4, same label"

    def main_pid(self) -> str:
        return self.service().get("MainPID", "0")

    def restart_after(self, signal_name: str) -> str:
        vm = self.vm
        rig = GuestRig(vm)
        acked = rig.press("ticket").get("event_ids", [])
        before = self.service()
        pid = before["MainPID"]
        t0 = time.monotonic()
        vm.run(f"kill -{signal_name} {pid}")

        def back_up() -> bool:
            s = self.service()
            return s.get("MainPID") not in ("0", pid) and s.get("ActiveState") == "active"

        wait(back_up, RESTART_TIMEOUT_S, f"kiosk back after SIG{signal_name}", 2)
        back = time.monotonic() - t0
        self.watcher.wait(lambda ev: set(acked) <= {e["event_id"] for e in ev}, 300, "acked event delivered")
        after = self.service()
        note = ""
        if signal_name == "STOP":
            j = vm.run("journalctl -u motcua-kiosk --no-pager | grep -c 'Watchdog timeout'",
                       check=False).strip()
            assert j not in ("", "0"), "no 'Watchdog timeout' in the journal"
            note = ", journal: watchdog timeout"
        self.verdict.figures[f"recovery after SIG{signal_name}"] = f"{back:.0f} s"
        return (f"pid {pid} → {after['MainPID']}, NRestarts {before['NRestarts']} → {after['NRestarts']}, "
                f"back in {back:.0f} s{note}; acked ticket event delivered")

    def power_cut(self, prompt: str) -> None:
        self.vm.power_cut()
        t0 = time.monotonic()
        self.vm.start()
        self.vm.wait_agent(BOOT_TIMEOUT_S)
        wait(lambda: self.online() and self.kiosk_active(), BOOT_TIMEOUT_S, "kiosk online after power cut", 2)
        self.verdict.figures["recovery after power cut"] = f"{time.monotonic() - t0:.0f} s (boot to online)"

    # ------------------------------------------------------------------ the run

    def run(self, skip_update: bool, skip_faults: bool = False) -> Verdict:
        v = self.verdict
        if not v.run("provision + flash", self.provision):
            return v
        if not v.run("first boot → online", lambda: self.boot_to_online("boot-to-online")):
            return v
        v.run("first-boot checks", self.first_boot_checks)
        v.run("display unit + page via hostfwd", lambda: display_step(self))
        rig = GuestRig(self.vm)
        if skip_faults:
            v.run("S1 visit (buttons)", lambda: scenario_visit(rig, self.watcher))
            v.run("events at the gateway", self.events_at_gateway)
            if not skip_update:
                from hil.vpi.update_steps import code_update_steps

                code_update_steps(self)
            return v
        v.run("S1 visit (buttons)", lambda: scenario_visit(rig, self.watcher))
        v.run("S2 officer buttons", lambda: scenario_officer(rig, self.watcher))
        v.run("S3 reason", lambda: scenario_reason(rig, self.watcher))
        v.run("events at the gateway", self.events_at_gateway)
        v.run("button on kernel GPIO (PL061, lgpio)", lambda: gpio_press_step(self))
        v.run("vision models arm64 = x86-64", self.vision)
        v.run("kill -9 → systemd restart", lambda: self.restart_after("KILL"))
        v.run("SIGSTOP → watchdog restart", lambda: self.restart_after("STOP"))
        v.run("S4 power cut (qemu killed)", lambda: scenario_power_cut(rig, self.watcher, self.power_cut))
        v.run("S5 network cut (link down/up)", lambda: scenario_network_cut(
            rig, self.watcher, lambda: self.vm.set_link(False), lambda: self.vm.set_link(True)))
        if not skip_update:
            from hil.vpi.update_steps import code_update_steps

            code_update_steps(self)
        v.run("read-only root (reboot)", lambda: readonly_root_step(self))
        return v

    def close(self) -> None:
        if self.vm is not None:
            self.vm.stop()
        if self.watcher is not None:
            self.watcher.close()
        if "gateway" in self.procs:
            self.procs["gateway"].stop()
        if "broker" in self.procs:
            self.procs["broker"].stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", action="store_true", help="keep the work folder (card image, logs)")
    ap.add_argument("--skip-update", action="store_true", help="skip the signed code update steps")
    ap.add_argument("--skip-faults", action="store_true",
                    help="only S1 and the events check before the updates (no S2-S5, faults, vision)")
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    image_dir = build_image.build()
    built = json.loads((image_dir / "image.json").read_text())
    work = Path(tempfile.mkdtemp(prefix="motcua-vpi-"))
    os.chmod(work, 0o755)  # Mosquitto drops to its own user and must read its files here
    say(f"work folder {work}; image {image_dir.name} (built in {built['seconds']['total']} s)")
    sc = Scenario(work, image_dir)
    sc.verdict.figures["image"] = f"{image_dir} ({built['seconds']['total']} s to build when cold)"
    try:
        sc.run(a.skip_update, a.skip_faults)
    finally:
        sc.close()
        sc.verdict.figures["total"] = f"{time.monotonic() - t0:.0f} s"
        print(sc.verdict.table(), flush=True)
        if a.keep or not sc.verdict.passed:
            say(f"logs and card image kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if sc.verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
