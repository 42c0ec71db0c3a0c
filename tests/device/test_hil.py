"""The HIL script's CI mode runs all five scenarios on simulated hardware."""

from __future__ import annotations

import subprocess
import sys

from tests.device.kiosk_proc import REPO


def test_hil_local_passes():
    r = subprocess.run(
        [sys.executable, "-m", "hil.run", "--local"], cwd=REPO, capture_output=True, text=True, timeout=400
    )
    assert r.returncode == 0, r.stdout + r.stderr
    table = r.stdout.split("== HIL ==")[1]  # hil.verdict's table: one row per scenario
    assert table.count(" PASS ") == 5 and "HIL PASSED" in table
