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
