"""One ConfigError for kiosk, vision, gateway and auth: the same "[section] key: problem" words for the
same pydantic problem, bounds read from the model, secrets never echoed."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract.config_errors import ConfigError, bounds, from_validation
from device.config import ConfigError as KioskConfigError
from device.vision.config import VisionConfig
from gateway.auth_config import parse_auth_table
from gateway.config import ConfigError as GatewayConfigError
from gateway.config import Settings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Web(_Strict):
    port: int = Field(8000, ge=1, le=65535)
    ratio: float = Field(0.5, gt=0, lt=1)
    pins: dict[str, Annotated[int, Field(ge=0, le=53)]] = Field(default_factory=dict)
    password: str = ""
    mode: str = Field("a", max_length=3)


class File(_Strict):
    data_dir: str = "x"
    web: Web = Field(default_factory=Web)


def _one(model: type[BaseModel], data: dict, section: str | None = None) -> ConfigError:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(data)
    return from_validation(exc.value, section, File if section is None else model)


def test_one_class_everywhere() -> None:
    assert KioskConfigError is ConfigError and GatewayConfigError is ConfigError
    assert issubclass(ConfigError, ValueError)
    e = ConfigError("rating", "scale", "must be 3 or 5, got 4")
    assert str(e) == "config error: [rating] scale: must be 3 or 5, got 4"
    assert (e.section, e.key, e.problem) == ("rating", "scale", "must be 3 or 5, got 4")
    assert str(ConfigError("leds", "", "must be a table")) == "config error: [leds]: must be a table"
    assert str(ConfigError("", "data_dir", "must be a path")) == "config error: data_dir: must be a path"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"web": {"port": 0}}, "config error: [web] port: must be between 1 and 65535, got 0"),
        ({"web": {"port": "80"}}, "config error: [web] port: must be an integer, got '80'"),
        ({"web": {"port": True}}, "config error: [web] port: must be an integer, got True"),
        ({"web": {"ratio": 1}}, "config error: [web] ratio: must be < 1, got 1"),
        ({"web": {"ratio": 0}}, "config error: [web] ratio: must be > 0, got 0"),
        ({"web": {"pins": {"next": 99}}}, "config error: [web] pins.next: must be between 0 and 53, got 99"),
        ({"web": {"mode": "abcd"}}, "config error: [web] mode: at most 3 characters, got 4"),
        ({"web": {"prot": 1}}, "config error: [web] prot: unknown key (misspelt?)"),
        ({"web": 5}, "config error: [web]: must be a table, got int"),
        ({"webb": {}}, "config error: [webb]: unknown section (misspelt?); known: data_dir, web"),
        ({"data_dir": 5}, "config error: data_dir: must be a string, got 5"),
    ],
)
def test_whole_file_errors_name_section_and_key(data: dict, expected: str) -> None:
    assert str(_one(File, data)) == expected


def test_finite_and_secrets() -> None:
    class Finite(_Strict):
        x: Annotated[float, Field(allow_inf_nan=False)] = 0.0

    inf = _one(Finite, {"x": float("inf")}, "s")
    assert str(inf) == "config error: [s] x: must be a finite number, got inf"
    leaked = _one(File, {"web": {"password": 12345678}})
    assert str(leaked) == "config error: [web] password: must be a string" and "12345678" not in str(leaked)


def test_bounds_follow_nested_models_and_dict_values() -> None:
    assert bounds(File, ["web", "port"]) == {"ge": 1, "le": 65535}
    assert bounds(File, ["web", "pins", "next"]) == {"ge": 0, "le": 53}
    assert bounds(File, ["web", "nope"]) == {}


def test_the_four_configs_speak_alike() -> None:
    """Kiosk, vision, gateway and auth give the same form for their bad values."""
    with pytest.raises(ConfigError, match=r"^config error: \[camera\] fps: must be <= 30, got 31$"):
        VisionConfig.from_table({"fps": 31})
    with pytest.raises(ConfigError, match=r"^config error: \[web\] port: must be between 1 and 65535, got 0"):
        Settings.from_dict({"web": {"port": 0}}, env={})
    with pytest.raises(ConfigError, match=r"^config error: \[auth\] session_ttl_s: must be between 1") as exc:
        parse_auth_table({"session_ttl_s": -1})
    assert exc.value.section == "auth"
