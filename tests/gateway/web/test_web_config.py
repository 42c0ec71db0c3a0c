"""The typed config layer: bounds on the fields, assignments checked, secrets never echoed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.auth import AuthSettings
from gateway.config import ConfigError, Settings


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"kpi": {"warn_share": 2.0}}, "[kpi] warn_share"),
        ({"kpi": {"satisfaction_ok": -0.1}}, "[kpi] satisfaction_ok"),
        ({"broker": {"keepalive_s": 0}}, "[broker] keepalive_s"),
        ({"alerts": {"sweep_interval_s": -1.0}}, "[alerts] sweep_interval_s"),
        ({"web": {"max_body_bytes": 10}}, "[web] max_body_bytes"),
        ({"web": {"max_body_bytes": 4096, "max_upload_bytes": 2048}}, "[web] max_upload_bytes"),
        ({"database": {"batch_size": True}}, "[database] batch_size"),
        ({"web": 5}, "[web]: must be a table"),
        ({"retention": {"raw_days": 10, "aggregate_days": 5}}, "[retention] aggregate_days"),
    ],
)
def test_out_of_range_values_name_the_key(raw: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.from_dict(raw, env={})
    assert needle in str(exc.value)


def test_assignments_are_checked() -> None:
    s = Settings()
    s.web.port = 9000
    with pytest.raises(ValidationError):
        s.web.port = "80"  # type: ignore[assignment]
    with pytest.raises(ValidationError):
        s.web.port = 70000


def test_secrets_are_not_echoed() -> None:
    secret = "not-long-enough-secret"
    with pytest.raises(ValueError) as exc:
        AuthSettings.from_table({"secret_key": secret}, env={})
    assert "[auth] secret_key" in str(exc.value) and secret not in str(exc.value)
    with pytest.raises(ConfigError) as cexc:
        Settings.from_dict({"broker": {"password": 12345678}}, env={})
    assert "[broker] password" in str(cexc.value) and "12345678" not in str(cexc.value)
