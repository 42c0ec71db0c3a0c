"""The demo's generated kiosk configs (written with tomli-w) are the example plus the device keys."""

from __future__ import annotations

import tomllib

from demo.run import KIOSK_EXAMPLE, kiosk_config
from device.config import load_config


def test_kiosk_config_round_trips(tmp_path) -> None:
    text = kiosk_config("k03390-q2", "03390", 2, office_name="Bộ phận Một cửa xã Bình Lư")
    doc = tomllib.loads(text)
    example = tomllib.loads(KIOSK_EXAMPLE.read_text(encoding="utf-8"))
    example["device"].update({"id": "k03390-q2", "office_code": "03390", "counter": 2,
                              "office_name": "Bộ phận Một cửa xã Bình Lư"})
    assert doc == example
    path = tmp_path / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    cfg = load_config(path)  # the kiosk's own parser accepts it
    assert cfg.device.id == "k03390-q2" and cfg.device.office_name == "Bộ phận Một cửa xã Bình Lư"
    # without a name, the example's (another office's) is not kept: the display falls back to the code
    assert "office_name" not in tomllib.loads(kiosk_config("k03405-q1", "03405", 1))["device"]


def test_gateway_config_compresses_only_the_wait_target(tmp_path) -> None:
    """--time-scale divides the wait target and adds the banner; everything else is the example, and
    the gateway's own loader accepts it. Scale 1 is the example unchanged."""
    from demo.run import GATEWAY_EXAMPLE, gateway_config
    from gateway.config import Settings

    example = tomllib.loads(GATEWAY_EXAMPLE.read_text(encoding="utf-8"))
    plain = tomllib.loads(gateway_config(1))
    assert plain.pop("auth") == {**example.pop("auth"), "users": _report_users()}
    assert plain == example
    doc = tomllib.loads(gateway_config(20))
    doc.pop("auth")
    assert doc["kpi"].pop("wait_target_s") == 60.0
    notice = doc["web"].pop("notice")
    example["kpi"].pop("wait_target_s")
    booking = doc.pop("booking")  # demo pace: slots from now, a budget for simulated citizens
    assert booking["offices"]["03390"]["slot_minutes"] == 10 and example.pop("booking")["enabled"]
    assert doc == example
    assert "×20" in notice and "60 giây" in notice and "20 phút" in notice
    path = tmp_path / "gateway.toml"
    path.write_text(gateway_config(20), encoding="utf-8")
    settings = Settings.load(path)
    assert settings.kpi.wait_target_s == 60.0 and settings.web.notice == notice


def _report_users() -> list[dict]:
    """The demo's report logins; each stored hash is of the password the demo prints."""
    from demo.run import DEMO_REPORT_USERS
    from gateway.auth_users import verify_password

    out = []
    for user, password, role, offices, digest in DEMO_REPORT_USERS:
        assert verify_password(digest, password) and not verify_password(digest, password + "x")
        out.append({"username": user, "role": role, "password_hash": digest,
                    **({"offices": list(offices)} if offices else {})})
    return out
