"""The virtual Pi's GPIO and read-only-root steps: what they hand the kiosk and the guest is valid.

The steps themselves run in ``make vpi`` (qemu); here, on x86, the parts that can be wrong without
a guest: the PL061 kiosk config is accepted by the kiosk's own parser, the drop-in runs the
production command, the read-only switch script edits an fstab as intended.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
import tomli_w

from device.config import ConfigError, parse_config
from hil.vpi import gpio_step, readonly_step
from hil.vpi.build_image import _fstab

EXAMPLE = Path(__file__).resolve().parents[2] / "device" / "kiosk.example.toml"


def test_gpio_config_puts_every_pin_on_the_pl061_and_the_kiosk_accepts_it():
    text = gpio_step.gpio_config(EXAMPLE.read_text())
    cfg = parse_config(tomllib.loads(text))
    pins = dict(cfg.buttons.pins)
    assert pins["ticket"] == 3  # the line QEMU's power button drives
    used = list(pins.values()) + list(cfg.leds.pins.values()) + list(cfg.buzzer.pins.values())
    assert sorted(used) == list(range(8)), used  # all on the 8-line chip, each once
    assert cfg.audio.mode == "off" and cfg.buttons.debounce_ms == 0
    assert cfg.device == parse_config(tomllib.loads(EXAMPLE.read_text())).device


def test_gpio_config_refuses_a_rating_scale_the_chip_cannot_hold():
    data = tomllib.loads(EXAMPLE.read_text())
    data["rating"] = {**data.get("rating", {}), "scale": 5}
    with pytest.raises(ValueError, match="5-level"):
        gpio_step.gpio_config(tomli_w.dumps(data))


def test_gpio_config_is_rejected_by_the_kiosk_if_a_pin_were_shared():
    data = tomllib.loads(gpio_step.gpio_config(EXAMPLE.read_text()))
    data["buzzer"] = {"pin": 3}
    with pytest.raises(ConfigError, match="already used"):
        parse_config(data)


def test_gpio_dropin_runs_the_production_command_on_lgpio():
    d = gpio_step.dropin()
    lines = d.splitlines()
    assert "ExecStart=" in lines  # resets the --simulate ExecStart of the virtual-Pi drop-in
    start = next(ln for ln in lines if ln.startswith("ExecStart=/"))
    assert "--simulate" not in start and gpio_step.GPIO_CONFIG in start
    assert "Environment=GPIOZERO_PIN_FACTORY=lgpio" in lines
    assert f"BindReadOnlyPaths={gpio_step.CPUINFO}:/proc/cpuinfo" in lines


def test_readonly_switch_edits_the_fstab(tmp_path):
    """The sed/printf part of the switch script, run on the image's own fstab."""
    fstab = tmp_path / "fstab"
    fstab.write_text(_fstab())
    script = "\n".join(ln for ln in readonly_step.PREPARE.splitlines()
                       if ln.startswith(("sed ", "printf '%s\\n' 'LABEL", "  'tmpfs", "grep ")))
    script = script.replace("/etc/fstab", str(fstab))
    out = subprocess.run(["sh", "-ec", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1"
    rows = [ln.split() for ln in fstab.read_text().splitlines()]
    assert ["/dev/vda2", "/", "ext4", "ro,noatime", "0", "1"] in rows
    assert ["LABEL=motcua-data", "/var/lib/motcua", "ext4", "defaults,noatime", "0", "2"] in rows
    assert ["tmpfs", "/tmp", "tmpfs", "mode=1777,nosuid,nodev", "0", "0"] in rows
    assert any(r[1] == "/boot/firmware" for r in rows)  # the boot line untouched


def test_data_disk_is_an_ext4_labelled_for_the_fstab(tmp_path):
    img = tmp_path / "data.img"
    readonly_step.make_data_disk(img)
    assert img.stat().st_size == readonly_step.DATA_MB * 1024 * 1024
    label = subprocess.run(["e2label", str(img)], capture_output=True, text=True, check=True).stdout
    assert label.strip() == readonly_step.DATA_LABEL
