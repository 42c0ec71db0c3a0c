"""The deployment files the first-boot bundle installs: unit hardening score, journald limits,
the install script's shell syntax."""

from __future__ import annotations

import re
import subprocess

from provisioning.cloudinit import (
    BUNDLE_FILES,
    FirstBoot,
    display_unit,
    install_script,
    journald_conf,
    systemd_unit,
)


def test_unit_hardening_score_is_ok(tmp_path):
    """`systemd-analyze security --offline=yes` (systemd >= 250) scores the unit file itself."""
    unit = tmp_path / "motcua-kiosk.service"
    unit.write_text(systemd_unit())
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)], capture_output=True,
                       text=True, timeout=120)
    m = re.search(r"Overall exposure level for motcua-kiosk.service: ([0-9.]+) (\w+)", r.stdout)
    assert m, r.stdout[-2000:] + r.stderr
    print(f"systemd-analyze security: {m.group(1)} {m.group(2)}")
    assert float(m.group(1)) <= 2.0 and m.group(2) == "OK"


def test_unit_is_notify_with_watchdog_and_writable_data_dir_only():
    unit = systemd_unit()
    for line in ("Type=notify", "Restart=always", "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "PrivateTmp=yes", "ReadWritePaths=/var/lib/motcua", "CapabilityBoundingSet="):
        assert f"\n{line}\n" in unit
    assert int(re.search(r"\nWatchdogSec=(\d+)\n", unit).group(1)) >= 30
    assert len(re.findall(r"\nReadWritePaths=", unit)) == 1


def test_journald_limits_bound_the_card():
    conf = journald_conf()
    assert "[Journal]" in conf and "SystemMaxUse=64M" in conf and "Storage=persistent" in conf


def test_install_script_parses_and_first_boot_runs_it(tmp_path):
    script = tmp_path / "install-kiosk.sh"
    script.write_text(install_script())
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    ud = FirstBoot("k-1", "i-1", wheels=["motcua_edge-0.1.0-py3-none-any.whl"]).user_data()
    assert "sh /boot/firmware/motcua/install-kiosk.sh /boot/firmware/motcua/wheels/motcua_edge" in ud
    assert "/etc/systemd/journald.conf.d/motcua.conf" in ud
    assert set(BUNDLE_FILES) == {"motcua-kiosk.service", "journald-motcua.conf", "install-kiosk.sh",
                                 "motcua-display.service"}


def test_display_unit_is_chromium_kiosk_in_cage_after_the_kiosk():
    unit = display_unit()
    exec_start = re.search(r"\nExecStart=(.*?[^\\])\n", unit, re.S).group(1).replace("\\\n", " ")
    assert exec_start.startswith("/usr/bin/cage ") and " -- /usr/bin/chromium --kiosk " in exec_start
    assert exec_start.split()[-1] == "http://127.0.0.1:8101/"
    for line in ("User=motcua", "TTYPath=/dev/tty1", "Restart=always", "After=motcua-kiosk.service "
                 "systemd-user-sessions.service getty@tty1.service", "ConditionPathExists=/usr/bin/cage",
                 "ConditionPathExists=/usr/bin/chromium", "WantedBy=multi-user.target"):
        assert f"\n{line}\n" in unit, line
    ud = FirstBoot("k-1", "i-1").user_data()
    assert "systemctl enable --now motcua-display.service" in ud
    assert ud.index("enable --now motcua-kiosk.service") < ud.index("enable --now motcua-display.service")
