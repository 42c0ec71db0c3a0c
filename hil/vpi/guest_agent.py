#!/usr/bin/python3
"""Test-harness command channel inside the virtual Pi (NOT for production images).

Reads one JSON request per line from the virtio-serial port ``motcua.agent`` and answers one JSON
line: ``{"id", "rc", "out"}``. The host is the only party on that port (qemu wires it to a Unix socket
the harness owns), so no network service is opened in the guest. Standard library only, because it
runs with Debian's python3 before the kiosk is installed.
"""

import json
import os
import subprocess
import sys
import time

PORT = "/dev/virtio-ports/motcua.agent"
MAX_OUT = 4 * 1024 * 1024  # model outputs travel back as base64


def run(req: dict) -> dict:
    try:
        p = subprocess.run(["/bin/sh", "-c", req["cmd"]], capture_output=True,
                           timeout=float(req.get("timeout", 120)))
        out = (p.stdout + p.stderr)[-MAX_OUT:].decode("utf-8", "replace")
        return {"id": req.get("id"), "rc": p.returncode, "out": out}
    except subprocess.TimeoutExpired:
        return {"id": req.get("id"), "rc": 124, "out": "timeout"}
    except (KeyError, TypeError, ValueError) as exc:
        return {"id": req.get("id"), "rc": 125, "out": f"bad request: {exc}"}


def main() -> int:
    while not os.path.exists(PORT):
        time.sleep(0.5)
    fd = os.open(PORT, os.O_RDWR)  # a virtio port can be opened once: read and write on one fd
    buf = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            time.sleep(0.2)  # host side not connected yet
            continue
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                req = json.loads(line)
            except ValueError:
                continue
            data = (json.dumps(run(req)) + "\n").encode()
            while data:
                data = data[os.write(fd, data):]


if __name__ == "__main__":
    sys.exit(main())
