"""Request bodies are refused before they are read: a real uvicorn gateway process, its RSS measured.

Before the limit, a 200 MB anonymous POST to /api/v1/offices grew the gateway by ~570 MB and was
then answered 401 (FastAPI reads a JSON body before it runs the auth dependency).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.mosquitto import free_port, wait_port

ATTACK_BYTES = 200 * 1024 * 1024
CHUNK = 1024 * 1024
LIMIT = 1024 * 1024

SERVER = """
import sys, uvicorn
from gateway.app import create_app
from gateway.config import Settings
settings = Settings.from_dict({"data_dir": sys.argv[1], "auth": {"secret_key": "s" * 40}}, env={})
uvicorn.run(create_app(settings, start_ingest=False), host="127.0.0.1", port=int(sys.argv[2]),
            log_level="warning")
"""


@pytest.fixture
def gateway_proc(tmp_path: Path) -> Iterator[tuple[str, psutil.Process]]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(tmp_path / "data"), str(port)])
    try:
        wait_port(port, timeout=60)
        yield f"127.0.0.1:{port}", psutil.Process(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def send_raw(addr: str, head: str, body_chunks: Iterator[bytes]) -> tuple[int, int]:
    """Send a request head and as much of the body as the server takes; (status, body bytes sent)."""
    host, port = addr.split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=60) as s:
        s.sendall(head.encode())
        try:
            for chunk in body_chunks:
                s.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: what we want
        data = b""
        try:
            while b"\r\n" not in data:
                more = s.recv(4096)
                if not more:
                    break
                data += more
        except ConnectionResetError:
            pass
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    return int(data.split(b" ", 2)[1]), sent


def fixed_body() -> Iterator[bytes]:
    block = b"x" * CHUNK
    for _ in range(ATTACK_BYTES // CHUNK):
        yield block


def chunked_body() -> Iterator[bytes]:
    block = b"x" * CHUNK
    frame = f"{len(block):x}\r\n".encode() + block + b"\r\n"
    for _ in range(ATTACK_BYTES // CHUNK):
        yield frame
    yield b"0\r\n\r\n"


def head(addr: str, path: str, extra: str) -> str:
    return f"POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{extra}\r\n"


def test_large_bodies_refused_before_read(gateway_proc: tuple[str, psutil.Process]) -> None:
    addr, proc = gateway_proc
    base = f"http://{addr}"
    # Warm up the paths used below so that their one-off imports are in the baseline.
    assert httpx.get(base + "/api/v1/offices", timeout=60).status_code == 200
    small = json.dumps({"code": "99999"})
    assert httpx.post(base + "/api/v1/offices", content=small, timeout=60).status_code == 401
    rss_before = proc.memory_info().rss

    status, sent = send_raw(addr, head(addr, "/api/v1/offices", f"Content-Length: {ATTACK_BYTES}\r\n"),
                            fixed_body())
    assert status == 413
    assert sent < ATTACK_BYTES  # refused on the header, the server did not wait for the body

    status, sent = send_raw(addr, head(addr, "/api/v1/offices", "Transfer-Encoding: chunked\r\n"),
                            chunked_body())
    assert status == 413
    assert sent < ATTACK_BYTES

    growth_mb = (proc.memory_info().rss - rss_before) / 2**20
    print(f"gateway RSS growth after two 200 MB bodies: {growth_mb:.1f} MB")
    assert growth_mb < 50

    # Still serving; bodies under the limit behave as before (here: 401, no role).
    assert httpx.get(base + "/api/v1/offices", timeout=60).status_code == 200
    r = httpx.post(base + "/api/v1/offices", content=b"[" + b" " * (LIMIT - 10) + b"]", timeout=60)
    assert r.status_code == 401
    # The bundle upload has its own limit (and checks the role before reading): 2 MB is not a 413.
    r = httpx.post(base + "/api/v1/updates", content=b"x" * (2 * LIMIT), timeout=60)
    assert r.status_code == 401
    # ...but JSON endpoints below it do not inherit it.
    r = httpx.post(base + "/api/v1/updates/b-x/rollout", content=b"x" * (2 * LIMIT), timeout=60)
    assert r.status_code == 413


def test_malformed_content_length_is_400(gateway_proc: tuple[str, psutil.Process]) -> None:
    addr, _ = gateway_proc
    status, _ = send_raw(addr, head(addr, "/api/v1/offices", "Content-Length: 12abc\r\n"), iter([]))
    assert status == 400
    assert httpx.get(f"http://{addr}/api/v1/offices", timeout=60).status_code == 200
