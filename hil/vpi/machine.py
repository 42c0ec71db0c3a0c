"""The virtual Pi: one ``qemu-system-aarch64 -M virt`` process (TCG) on a flashed card image.

Wiring, and why:
- Network: user-mode (slirp) with ``restrict=on``: the guest reaches nothing but the
  ``guestfwd`` forwards (one ``socat`` per connection) to the host's loopback
  (``10.0.2.100:8883`` → Mosquitto, ``10.0.2.101:8080`` → gateway).
  ``set_link`` on the monitor pulls the virtual cable (network-cut scenario).
- Command channel: the test-only guest agent on the virtio-serial port ``motcua.agent`` (a Unix
  socket here). Nothing listens on the guest's network for it.
- Console: the serial console goes to ``console.log`` (read for diagnostics only; verdicts key on
  our own markers and on what reaches the gateway, never on interleaved console text).
- Power cut: SIGKILL of qemu. Writes the guest had flushed are in the host file; the guest's
  page cache is lost, as on a Pi whose plug is pulled.
- ``acpi=off``: the board then describes itself by device tree only, and QEMU wires its power
  button to PL061 GPIO line 3 (a ``gpio-key``); the GPIO step drives that line (hil/vpi/gpio_step.py).
- Data disk: a second small virtio disk (ext4, label ``motcua-data``) stands in for the card's third
  partition that the read-only-root option keeps ``/var/lib/motcua`` on (hil/vpi/readonly_step.py);
  unused until that step moves the data dir onto it.
"""

from __future__ import annotations

import itertools
import json
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BROKER_IP, GATEWAY_IP = "10.0.2.100", "10.0.2.101"
BROKER_GUEST_PORT, GATEWAY_GUEST_PORT = 8883, 8080
# TCG on a loaded host: udev once took more than systemd's default 90 s to create
# /dev/disk/by-label/bootfs, /boot/firmware was not mounted and the first boot failed. Debian 12's
# systemd 252 times device units out after DefaultTimeoutStartSec (its binary knows
# systemd.default_timeout_start_sec=, not systemd.default_device_timeout_sec=, which came in 254 and
# was ignored here: the boot partition still timed out at 90 s under a load average of 13).
SLOW_BOOT_ARGS = "systemd.default_timeout_start_sec=900 systemd.default_device_timeout_sec=900"


class GuestError(RuntimeError):
    """The guest did not answer, or a command in it failed."""


@dataclass
class Forwards:
    broker_port: int   # host 127.0.0.1 port of Mosquitto
    gateway_port: int  # host 127.0.0.1 port of the gateway


class VirtualPi:
    def __init__(self, image_dir: Path, disk: Path, work: Path, fwd: Forwards, smp: int = 2,
                 data_disk: Path | None = None) -> None:
        self.image_dir, self.disk, self.work, self.fwd, self.smp = image_dir, disk, work, fwd, smp
        self.data_disk = data_disk
        self.kernel_args = "rw"  # "ro systemd.volatile=state" for the read-only-root boot
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self._buf = b""
        self._ids = itertools.count(1)
        self.boots = 0

    # ------------------------------------------------------------------ lifecycle

    def command(self) -> list[str]:
        # cmd: forwards start one socat per guest connection; a tcp: forward is a single connection
        # opened when qemu starts (the broker drops it as idle and the guest could never reconnect).
        net = (f"user,id=net0,restrict=on,"
               f"guestfwd=tcp:{BROKER_IP}:{BROKER_GUEST_PORT}-cmd:socat STDIO "
               f"TCP:127.0.0.1:{self.fwd.broker_port},"
               f"guestfwd=tcp:{GATEWAY_IP}:{GATEWAY_GUEST_PORT}-cmd:socat STDIO "
               f"TCP:127.0.0.1:{self.fwd.gateway_port}")
        data = (["-drive", f"file={self.data_disk},format=raw,if=none,id=hd1",
                 "-device", "virtio-blk-pci,drive=hd1"] if self.data_disk else [])
        return [
            "qemu-system-aarch64", "-M", "virt,acpi=off", "-cpu", "cortex-a72", "-smp", str(self.smp),
            "-m", "2048",
            "-display", "none", "-no-reboot",
            "-kernel", str(self.image_dir / "vmlinuz"), "-initrd", str(self.image_dir / "initrd.img"),
            "-append", f"root=/dev/vda2 {self.kernel_args} rootwait console=ttyAMA0 net.ifnames=0 panic=10 "
                       f"{SLOW_BOOT_ARGS}",
            "-drive", f"file={self.disk},format=raw,if=none,id=hd0",
            "-device", "virtio-blk-pci,drive=hd0", *data,
            "-netdev", net, "-device", "virtio-net-pci,netdev=net0",
            "-device", "virtio-serial-pci",
            "-chardev", f"socket,id=agent,path={self.work / 'agent.sock'},server=on,wait=off",
            "-device", "virtserialport,chardev=agent,name=motcua.agent",
            "-serial", f"file:{self.work / f'console-{self.boots}.log'}",
            "-monitor", f"unix:{self.work / 'monitor.sock'},server=on,wait=off",
        ]

    def start(self) -> None:
        for name in ("agent.sock", "monitor.sock"):
            (self.work / name).unlink(missing_ok=True)
        self.boots += 1
        log = open(self.work / f"qemu-{self.boots}.log", "wb")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self._buf = b""
        self.sock = None

    def power_cut(self) -> None:
        """SIGKILL qemu: no shutdown, no flush beyond what the guest had already written."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
        self._close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                self.run("systemctl poweroff", timeout=10, check=False)
            except GuestError as exc:  # the guest may go down before it answers
                print(f"poweroff: {exc}", file=sys.stderr)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close()

    def shutdown(self, timeout: float = 600) -> float:
        """Clean power-off from inside the guest; seconds until qemu exited (``-no-reboot``)."""
        t0 = time.monotonic()
        try:
            self.run("systemctl poweroff", timeout=10, check=False)
        except GuestError as exc:  # the guest may go down before it answers
            print(f"poweroff: {exc}", file=sys.stderr)
        self.proc.wait(timeout)
        self._close()
        return time.monotonic() - t0

    def _close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # ------------------------------------------------------------------ agent

    def _connect(self) -> socket.socket:
        if self.sock is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(self.work / "agent.sock"))
            self.sock, self._buf = s, b""
        return self.sock

    def _request(self, cmd: str, timeout: float) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            raise GuestError(f"qemu is not running (exit {self.proc.returncode if self.proc else None})")
        rid = next(self._ids)
        s = self._connect()
        s.sendall((json.dumps({"id": rid, "cmd": cmd, "timeout": timeout}) + "\n").encode())
        end = time.monotonic() + timeout + 15
        while time.monotonic() < end:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if msg.get("id") == rid:
                    return msg
            s.settimeout(max(0.1, end - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                self._close()
                raise GuestError("agent channel closed")
            self._buf += chunk
        self._close()  # a late answer must not be taken for the next request's
        raise GuestError(f"no answer from the guest agent within {timeout + 15:.0f} s: {cmd[:80]}")

    def run(self, cmd: str, timeout: float = 120, check: bool = True) -> str:
        msg = self._request(cmd, timeout)
        if check and msg.get("rc") != 0:
            raise GuestError(f"`{cmd[:120]}` exited {msg.get('rc')}: {msg.get('out', '')[-800:]}")
        return str(msg.get("out", ""))

    def put_file(self, path: str, data: bytes, chunk: int = 90_000) -> None:
        """Copy bytes into the guest through the agent (base64 in pieces below the 128 KiB argument
        limit of one exec argument)."""
        import base64

        text = base64.b64encode(data).decode()
        self.run(f"rm -f {path}.b64")
        for i in range(0, len(text), chunk):
            self.run(f"printf %s '{text[i:i + chunk]}' >> {path}.b64")
        self.run(f"base64 -d {path}.b64 > {path} && rm -f {path}.b64")

    def wait_agent(self, timeout: float) -> float:
        """Seconds until the guest agent answered (the guest booted to multi-user services)."""
        t0 = time.monotonic()
        end = t0 + timeout
        while time.monotonic() < end:
            if self.proc is not None and self.proc.poll() is not None:
                log = self.work / f"console-{self.boots}.log"
                raise GuestError(f"qemu exited {self.proc.returncode}; see {log}")
            try:
                got = self._request("echo MOTCUA-AGENT-READY", 5).get("out", "")
                if got.strip() == "MOTCUA-AGENT-READY":
                    return time.monotonic() - t0
            except (OSError, GuestError):
                self._close()
                time.sleep(1)
        raise GuestError(f"guest agent silent for {timeout:.0f} s; see {self.work}/console-{self.boots}.log")

    # ------------------------------------------------------------------ monitor

    def monitor(self, command: str) -> str:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(str(self.work / "monitor.sock"))
        try:
            time.sleep(0.3)
            s.recv(65536)  # banner
            s.sendall(command.encode() + b"\n")
            time.sleep(0.5)
            return s.recv(65536).decode(errors="replace")
        finally:
            s.close()

    def set_link(self, up: bool) -> None:
        self.monitor(f"set_link net0 {'on' if up else 'off'}")

    def hostfwd(self, host_port: int, guest_port: int) -> None:
        """Forward 127.0.0.1:host_port on the host to the guest's guest_port (slirp ``hostfwd``)."""
        out = self.monitor(f"hostfwd_add net0 tcp:127.0.0.1:{host_port}-:{guest_port}")
        if "error" in out.lower() or "could not" in out.lower():
            raise GuestError(f"hostfwd_add: {out.strip()}")

    def power_button(self) -> None:
        """QEMU's power button: with ``acpi=off`` a 100 ms high pulse on PL061 line 3."""
        self.monitor("system_powerdown")


def guest_http(method: str, url: str, timeout: float = 60) -> str:
    """A shell command that makes an HTTP request in the guest with Debian's python3 (no curl there);
    prints ``<status> <body>``."""
    code = ("import sys,urllib.request as u,urllib.error as e\n"
            f"r=u.Request({url!r},method={method!r})\n"
            "try:\n"
            f" x=u.urlopen(r,timeout={timeout}); print(x.status, x.read().decode())\n"
            "except e.HTTPError as h: print(h.code, h.read().decode())\n")
    return "python3 -c " + _sh_quote(code)


def _sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
