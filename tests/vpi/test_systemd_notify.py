"""sd_notify protocol of ``motcua-kiosk run`` against a socket standing in for systemd's.

The kiosk process is real (simulated pins, real Mosquitto); the test binds the NOTIFY_SOCKET
datagram socket systemd would own and reads what the kiosk sends: READY=1 once serving, then
WATCHDOG=1 about every WATCHDOG_USEC/3; none while the kiosk is stopped (SIGSTOP), pings again
after SIGCONT; STOPPING=1 on SIGTERM. In the virtual Pi the same code runs under real systemd
(``make vpi``: the SIGSTOP step is a watchdog restart there).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from device.systemd import ServiceNotifier, watchdog_period
from tests.device.kiosk_proc import REPO, write_config
from tests.support.mosquitto import free_port


def test_watchdog_period_from_env():
    assert watchdog_period({"WATCHDOG_USEC": "30000000"}, 7) == 10.0
    assert watchdog_period({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "8"}, 7) is None  # not ours
    assert watchdog_period({"WATCHDOG_USEC": "x"}, 7) is None
    assert watchdog_period({}, 7) is None


def test_no_systemd_no_thread():
    n = ServiceNotifier(lambda: True, lambda: True, env={})
    n.start()
    n.stop()
    assert n.enabled is False and n._thread is None and n.sent == []


def test_self_restart_is_a_reload_with_a_longer_watchdog():
    class Rec:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def notify(self, state: str) -> None:
            self.sent.append(state)

    rec = Rec()
    n = ServiceNotifier(lambda: True, lambda: True, env={"NOTIFY_SOCKET": "x", "WATCHDOG_USEC": "60000000"},
                        notifier=rec)
    n.start()
    deadline = time.monotonic() + 10
    while not rec.sent and time.monotonic() < deadline:
        time.sleep(0.05)
    n.stop(restarting=True)
    assert rec.sent[0].startswith("READY=1") and "WATCHDOG_USEC=60000000" in rec.sent[0]
    assert rec.sent[-1].startswith("RELOADING=1") and "WATCHDOG_USEC=600000000" in rec.sent[-1]
    assert not any("STOPPING=1" in m for m in rec.sent)


def _recv_all(sock: socket.socket, seconds: float) -> list[tuple[float, str]]:
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        sock.settimeout(max(0.05, end - time.monotonic()))
        try:
            data = sock.recv(4096)
        except TimeoutError:
            break
        out.append((time.monotonic(), data.decode()))
    return out


def test_kiosk_notifies_ready_and_pings_only_while_alive(tmp_path, mosquitto):
    cfg = write_config(tmp_path / "k.toml", device_id="kiosk-sd")
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    env = os.environ | {"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "1500000"}  # ping every 0.5 s
    proc = subprocess.Popen(
        [sys.executable, "-m", "device.cli", "run", "--simulate", "--config", str(cfg), "--broker",
         mosquitto.url, "--data-dir", str(tmp_path / "d"), "--http-port", str(free_port())],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        got: list[tuple[float, str]] = []
        end = time.monotonic() + 120
        while not any("READY=1" in m for _, m in got) and time.monotonic() < end:
            got += _recv_all(sock, 1)
        assert any("READY=1" in m for _, m in got), got
        pings = [m for _, m in _recv_all(sock, 3) if m == "WATCHDOG=1"]
        assert len(pings) >= 3, pings  # ~6 expected at 0.5 s
        proc.send_signal(signal.SIGSTOP)
        time.sleep(0.2)
        _recv_all(sock, 0.1)  # drop a ping sent just before the stop
        assert [m for _, m in _recv_all(sock, 3) if m == "WATCHDOG=1"] == []
        proc.send_signal(signal.SIGCONT)
        resumed = [m for _, m in _recv_all(sock, 5) if m == "WATCHDOG=1"]
        assert len(resumed) >= 2, resumed
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert "STOPPING=1" in [m for _, m in _recv_all(sock, 1)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
