"""The counter display on the virtual Pi: the unit file valid, the page served and reachable.

The test image has no cage/Chromium (hil/README.md says why), so the display unit is skipped on its
``ConditionPathExists=`` lines. What can still be checked in the guest:
1. ``systemd-analyze verify`` on both units: the only finding allowed is that cage, the one
   executable the display unit starts, is absent on this image; any other finding (syntax, unknown
   setting, bad dependency) fails the step;
2. the page Chromium would open (the kiosk's ``[display]`` URL, ``http://127.0.0.1:8101/``) is served
   in the guest and is byte for byte this checkout's ``device/web/static/index.html``;
3. from the host through a forwarded port: QEMU's ``hostfwd`` (host 127.0.0.1 only) to a
   ``systemd-socket-proxyd`` started in the guest in front of the kiosk's loopback listener (the
   kiosk itself stays bound to 127.0.0.1, as in the field); the page and ``/api/status`` (this
   device, the last ticket the display shows) are fetched over it, as a technician's laptop would
   through an SSH tunnel.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "device" / "web" / "static" / "index.html"
PROXY_PORT = 8102
ALLOWED = "Command /usr/bin/cage is not executable: No such file or directory"


def verify_units(vm: Any) -> str:
    out = vm.run("cd /etc/systemd/system && systemd-analyze verify motcua-display.service "
                 "motcua-kiosk.service 2>&1; echo rc=$?", timeout=300, check=False)
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    findings = [ln for ln in lines[:-1] if ALLOWED not in ln]
    assert not findings, f"systemd-analyze verify: {findings}"
    return "verify: " + ("clean" if len(lines) == 1 else "only 'cage not installed' (expected here)")


def display_step(sc: Any) -> str:
    from hil.vpi.machine import free_port
    from hil.vpi.run import DEVICE, KIOSK_HTTP

    vm = sc.vm
    verdict = verify_units(vm)
    want = hashlib.sha256(PAGE.read_bytes()).hexdigest()
    got = vm.run("python3 -c 'import hashlib,urllib.request as u; print(hashlib.sha256(u.urlopen("
                 f"\"{KIOSK_HTTP}/\", timeout=60).read()).hexdigest())'", timeout=120).strip()
    assert got == want, f"guest page sha256 {got[:12]} != checkout's index.html {want[:12]}"
    vm.run("systemctl stop motcua-vpi-display-fwd.socket 2>/dev/null; "
           f"systemd-run --unit=motcua-vpi-display-fwd --socket-property=ListenStream={PROXY_PORT} "
           f"/lib/systemd/systemd-socket-proxyd 127.0.0.1:{KIOSK_HTTP.rsplit(':', 1)[1]}", timeout=120)
    port = free_port()
    vm.hostfwd(port, PROXY_PORT)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
        page = http.get("/")
        status = http.get("/api/status").json()
    assert page.status_code == 200 and hashlib.sha256(page.content).hexdigest() == want, page.status_code
    assert status.get("device_id") == DEVICE, status
    sc.verdict.figures["display page via hostfwd"] = (
        f"{len(page.content)} bytes = index.html; last ticket {json.dumps(status.get('last_ticket'))}")
    return f"{verdict}; page served in the guest and fetched from the host (127.0.0.1:{port} → guest)"
