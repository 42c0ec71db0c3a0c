"""Config validation: every bad value stops the kiosk with a message naming the key."""

from __future__ import annotations

import pytest

from device.config import ConfigError, load_config, parse_config
from tests.device.helpers import EXAMPLE, example_table


def _err(mutate) -> str:
    data = example_table()
    mutate(data)
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    return str(exc.value)


def test_example_is_valid_and_typed():
    cfg = load_config(EXAMPLE)
    assert cfg.device.timezone == "Asia/Ho_Chi_Minh" and cfg.device.counter == 2
    assert (
        cfg.rating.scale == 3
        and cfg.rating.label(1) == "Không hài lòng"
        and cfg.rating.label(3) == "Rất hài lòng"
    )
    assert cfg.queue.label(123) == "0123"
    assert cfg.broker.port == 1883 and not cfg.broker.tls
    assert not cfg.camera_enabled and cfg.vision is None
    assert len(cfg.source_sha256) == 64


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d["rating"].update(scale=4), "config error: [rating] scale: must be 3 or 5, got 4"),
        (lambda d: d["rating"].update(scale=5), "config error: [rating] labels: must have 5 entries"),
        (lambda d: d["device"].pop("id"), "config error: [device] id: required key is missing"),
        (lambda d: d["device"].update(id="Bad ID"), "config error: [device] id: must be lower-case"),
        (
            lambda d: d["device"].update(counter=0),
            "config error: [device] counter: must be between 1 and 999",
        ),
        (lambda d: d["device"].update(timezone="Mars/Olympus"), "[device] timezone: unknown time zone"),
        (lambda d: d["broker"].update(url="http://x"), "[broker] url: must look like mqtt://host:port"),
        (lambda d: d["broker"].update(ca_file="/nonexistent/ca.pem"), "[broker] ca_file: file not found"),
        (lambda d: d["broker"].update(keepalive="30"), "[broker] keepalive: must be an integer"),
        (lambda d: d["buttons"]["pins"].pop("next"), "[buttons.pins] next: required button pin is missing"),
        (lambda d: d["buttons"]["pins"].update(rate_4=4), "[buttons.pins] rate_4: outside the 3-level"),
        (lambda d: d["buttons"]["pins"].update(next=5), "[buttons.pins] next: GPIO 5 already used by"),
        (lambda d: d["leds"].update(ticket=5), "[leds] ticket: GPIO 5 already used by [buttons.pins] ticket"),
        (lambda d: d["printer"].update(kind="laser"), "[printer] kind: must be file, usb, serial or none"),
        (lambda d: d["printer"].update(kind="usb"), "[printer] vendor_id: required integer"),
        (lambda d: d["audio"].update(volume=2), "[audio] volume: must be between 0 and 1"),
        (lambda d: d["audio"].update(mode="loud"), "[audio] mode: must be voice, chime or off"),
        (
            lambda d: d["rating"]["reasons"].update({"Bad-Code": "x"}),
            "[rating] reasons.Bad-Code: code must be",
        ),
        (lambda d: d["queue"].update(label_digit=3), "[queue] label_digit: unknown key (misspelt?)"),
        (lambda d: d.update(extra={}), "config error: [extra]: unknown section"),
        (lambda d: d["outbox"].update(quota_mb=0), "[outbox] quota_mb: must be between"),
        (lambda d: d["camera"].update(enabled="yes"), "[camera] enabled: must be true or false"),
    ],
)
def test_bad_values_name_the_key(mutate, expected):
    assert expected in _err(mutate)


def test_camera_table_goes_to_vision_config():
    data = example_table()
    data["camera"] = {"enabled": True, "fpss": 3}
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    assert str(exc.value).startswith("config error: [camera] fpss")
    data["camera"] = {"enabled": True, "fps": 2.0}
    cfg = parse_config(data)
    assert cfg.vision is not None and cfg.vision.fps == 2.0


def test_syntax_error_and_missing_file(tmp_path):
    bad = tmp_path / "k.toml"
    bad.write_text("[device\nid = 1")
    with pytest.raises(ConfigError, match="TOML syntax"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_five_level_scale():
    data = example_table()
    data["rating"] = {"scale": 5}
    data["buttons"]["pins"].update(rate_4=20, rate_5=21)
    cfg = parse_config(data)
    assert cfg.rating.labels[0] == "Rất không hài lòng" and cfg.rating.labels[4] == "Rất hài lòng"


@pytest.mark.parametrize(
    "mutate, expected",
    [
        # Issue 8: values the wire contract cannot carry are refused at start, naming the key.
        (
            lambda d: d["device"].update(officer_id="x" * 300),
            "config error: [device] officer_id: at most 200 characters",
        ),
        (lambda d: d["outbox"].update(quota_mb=float("nan")), "[outbox] quota_mb: must be a finite number"),
        (lambda d: d["health"].update(interval_s=float("inf")), "[health] interval_s: must be a finite"),
        (lambda d: d["rating"].update(prompt_timeout_s=float("nan")), "[rating] prompt_timeout_s: must be"),
        (lambda d: d["rating"].update(labels=["a", "b", "x" * 201]), "[rating] labels.2: at most 200 chara"),
        (lambda d: d["rating"]["reasons"].update(other="y" * 201), "[rating] reasons.other: at most 200"),
        (lambda d: d["device"].update(counter=True), "[device] counter: must be an integer, got True"),
        (lambda d: d["buttons"].update(min_gap_ms=-1), "[buttons] min_gap_ms: must be between 0 and 5000"),
        (lambda d: d["buttons"]["pins"].update(next=99), "[buttons.pins] next: must be between 0 and 53"),
        (lambda d: d["audio"].update(volume="loud"), "[audio] volume: must be a number, got 'loud'"),
    ],
)
def test_values_the_contract_cannot_carry_are_refused(mutate, expected):
    assert expected in _err(mutate)


def test_check_config_cli_refuses_nan(tmp_path):
    import subprocess
    import sys

    from tests.device.helpers import REPO

    text = EXAMPLE.read_text().replace("quota_mb = 64", "quota_mb = nan")
    assert "quota_mb = nan" in text
    bad = tmp_path / "k.toml"
    bad.write_text(text)
    r = subprocess.run(
        [sys.executable, "-m", "device.cli", "check-config", "--config", str(bad)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 2 and "[outbox] quota_mb: must be a finite number" in r.stderr + r.stdout


def test_config_is_frozen():
    from pydantic import ValidationError

    cfg = load_config(EXAMPLE)
    with pytest.raises(ValidationError):
        cfg.device.counter = 3  # type: ignore[misc]
