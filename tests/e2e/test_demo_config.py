"""The demo's generated kiosk configs (written with tomli-w) are the example plus the device keys."""

from __future__ import annotations

import tomllib

from demo.run import KIOSK_EXAMPLE, kiosk_config
from device.config import load_config


def test_kiosk_config_round_trips(tmp_path) -> None:
    text = kiosk_config("k03390-q2", "03390", 2)
    doc = tomllib.loads(text)
    example = tomllib.loads(KIOSK_EXAMPLE.read_text(encoding="utf-8"))
    example["device"].update({"id": "k03390-q2", "office_code": "03390", "counter": 2})
    assert doc == example
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    cfg = load_config(path)  # the kiosk's own parser accepts it
    assert cfg.device.id == "k03390-q2"
