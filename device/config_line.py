"""Kiosk config section ``[line]``: one queue per service field shared by several counters.

``role``:

* ``"own"`` (default): the kiosk keeps its own line, exactly as before shared lines existed;
* ``"entrance"``: the kiosk at the office entrance issues tickets per service field (the fields of
  ``[calling.fields]``, in their order) and is the **only writer** of every shared line: numbers,
  tickets, calls and their events live in its ``kiosk.db`` (device/line_owner.py). It answers the
  counters on a separate LAN listener (``listen_host``/``listen_port``) that serves only the line API
  and refuses any request without the office's ``token``;
* ``"counter"``: a counter kiosk whose ``next``/``recall``/``no_show`` are requests to the entrance
  kiosk at ``entrance_url`` for the fields of ``fields`` (device/line_client.py), with its own token
  (device/line_tokens.py: derived from the office's secret, good for this counter only).

Buttons of an entrance kiosk (``[buttons.pins]``, device/entrance.py): ``field_<code>`` issues a
walk-in ticket in that field's line, ``priority_<code>`` a priority ticket in it, and one global
``priority`` button makes the next field button within ``priority_window_s`` issue a priority ticket.

Numbers: field *i* (1-based, the order of ``[calling.fields]``) issues ``i * block + 1`` …
``i * block + block - 1`` each service day (``block`` = 1000: ``1001`` … for the first field, ``2001`` …
for the second), so a number names its field and stays unique per entrance kiosk and day, which is
the visit key the gateway already uses (docs/kiosk.md#one-queue-per-service-field-across-counters).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from device.config_queue import FIELD_CODE
from device.line_tokens import TOKEN_PATTERN

ROLES = ("own", "entrance", "counter")


class LineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    role: Literal["own", "entrance", "counter"] = Field(
        default="own", description="own line (default), entrance (owner of the shared lines), or counter")
    token: str = Field(default="", max_length=200, description="entrance: the office's line secret (at "
                       "least 16 characters); counter: its own token c<counter>.<hex>, derived from the "
                       "secret by `python -m device.line_tokens <counter>` (device/line_tokens.py)")
    block: int = Field(default=1000, ge=100, le=10000, description="numbers per field and day (field i "
                       "issues i*block+1 .. i*block+block-1)")
    listen_host: str = Field(default="0.0.0.0", max_length=100, description="entrance: LAN address of "
                             "the line API")
    listen_port: int = Field(default=8110, ge=1, le=65535, description="entrance: port of the line API")
    entrance_url: str = Field(default="", max_length=200, pattern=r"^$|^https?://[^\s/]+(:\d+)?/?$",
                              description="counter: the entrance kiosk's line API, e.g. http://10.0.0.5:8110")
    fields: list[Annotated[str, Field(pattern=FIELD_CODE)]] = Field(
        default_factory=list, max_length=20, description="counter: the service fields it calls from")
    timeout_s: float = Field(default=5.0, ge=0.5, le=60, allow_inf_nan=False,
                             description="counter: how long a request to the entrance may take")
    priority_window_s: float = Field(default=15.0, ge=3, le=120, allow_inf_nan=False,
                                     description="entrance: after the global `priority` button, a field "
                                     "button pressed within this many seconds issues a priority ticket")

    @model_validator(mode="after")
    def _role_keys(self) -> LineConfig:
        if self.role == "entrance" and len(self.token) < 16:
            raise ValueError("token: at least 16 characters for role 'entrance'")
        if self.role == "counter" and not re.match(TOKEN_PATTERN, self.token):
            raise ValueError("token: a counter's own token, c<counter>.<32 hex digits> "
                             "(python -m device.line_tokens <counter> < the office's line secret)")
        if self.role == "counter" and not (self.entrance_url and self.fields):
            raise ValueError("a counter needs entrance_url and fields")
        return self

    def series(self, fields: dict[str, str], field: str | None) -> tuple[int, int] | None:
        """The first and last number of ``field``'s daily series on an entrance kiosk, else None."""
        if self.role != "entrance" or field is None or field not in fields:
            return None
        i = list(fields).index(field) + 1
        return i * self.block + 1, i * self.block + self.block - 1


def line_of(cfg: Any) -> LineConfig:
    """The kiosk's ``[line]`` (``cfg.extra["line"]``); ``role = "own"`` for a config without it."""
    return cfg.extra.get("line") or DEFAULT_LINE


DEFAULT_LINE = LineConfig()
