"""A real Mosquitto broker on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from provisioning.mosquitto_conf import QueueSizing, limits_conf

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
# as write_broker_config; "all" (the default here, for test diagnostics) logs every packet
PRODUCTION_LOG = ("error", "warning", "notice", "information")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


class Mosquitto:
    """Runs ``mosquitto -c conf`` in the foreground; ``stop()``/``start()`` keep the same port.

    ``extra_conf`` lines are appended (TLS, ACL, ...). Queue, in-flight, persistence and ``$SYS``
    settings are the ones the generated production config uses (``limits_conf``), so a restart keeps
    queued QoS 1 messages for persistent sessions and the tests meet the same limits as operators.
    """

    def __init__(self, port: int | None = None, extra_conf: str = "", workdir: Path | None = None,
                 listener_conf: str | None = None, sizing: QueueSizing | None = None,
                 sys_interval_s: int = 10, log_types: tuple[str, ...] = ("all",)) -> None:
        self.port = port or free_port()
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="mosq-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o777)  # mosquitto drops to user 'mosquitto' when started as root
        self.conf = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"
        listener = listener_conf or f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
        self.conf.write_text(
            listener
            + limits_conf(sizing or QueueSizing(), self.workdir, sys_interval_s=sys_interval_s)
            + f"log_dest file {self.log}\n"
            + "".join(f"log_type {t}\n" for t in log_types)
            + extra_conf
        )
        os.chmod(self.conf, 0o644)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        if not Path(MOSQUITTO).exists():
            raise RuntimeError("mosquitto is not installed (apt-get install -y mosquitto)")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        try:
            wait_port(self.port)
        except TimeoutError:
            err = self.proc.stderr.read().decode() if self.proc.poll() is not None else ""
            raise RuntimeError(f"mosquitto did not start: {err} {self.log_text()[-2000:]}") from None
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def reload(self) -> None:
        if self.proc:
            self.proc.send_signal(signal.SIGHUP)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def running_mosquitto() -> Iterator[Mosquitto]:
    """A started :class:`Mosquitto` (production queue and persistence settings), stopped and its work
    folder removed on exit."""
    broker = Mosquitto().start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(broker.workdir, ignore_errors=True)
