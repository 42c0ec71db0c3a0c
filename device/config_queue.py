"""Kiosk config section ``[calling]``: ticket kinds, the calling policy, appointments and service fields.

One pydantic model per table (frozen, unknown keys refused, bounded); device/config.py registers it
in ``EXTRA_SECTIONS`` and :func:`calling_of` reads it from ``cfg.extra`` (a kiosk without
``[calling]`` and without a priority button issues walk-in tickets only, first come first served,
exactly as before kinds existed). The policies are explained in
docs/kiosk.md#ticket-kinds-and-calling-policy; :func:`policy_text` is what the display shows the
citizen about them, in Vietnamese.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_PRIORITY_GROUPS = [
    "Người cao tuổi",
    "Người khuyết tật",
    "Phụ nữ mang thai",
    "Người có công với cách mạng",
    "Trẻ em dưới 6 tuổi",
]
FIELD_CODE = r"^[a-z][a-z0-9_]{0,31}$"
OPTIONAL_BUTTONS = ("priority",)  # the priority-ticket button at the door, beside ``ticket``
Prefix = Annotated[str, Field(max_length=4, pattern=r"^[A-Z]*$")]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class PriorityConfig(_Table):
    label_prefix: Prefix = Field(default="U", description="printed before the number (U = ưu tiên)")
    groups: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=lambda: list(DEFAULT_PRIORITY_GROUPS), max_length=12,
        description="who may take a priority ticket (printed on the ticket and shown by the button)",
    )


class AppointmentConfig(_Table):
    label_prefix: Prefix = Field(default="H", description="printed before the number (H = hẹn)")
    early_redeem_min: int = Field(default=60, ge=0, le=600, description="earliest redeem before the slot")
    call_early_min: int = Field(default=0, ge=0, le=120, description="called this long before its slot")
    late_min: int = Field(default=15, ge=0, le=240, description="redeemed later than this after the slot: "
                          "late_policy applies")
    late_policy: Literal["walk_in", "refuse"] = Field(
        default="walk_in", description="a late citizen gets a walk-in ticket, or is refused")
    no_show_min: int = Field(default=30, ge=1, le=480, description="not redeemed this long after its slot: "
                             "the booking counts as a no-show")
    qr_camera: str = Field(default="", max_length=300, pattern=r"^$|^picamera2$|^(opencv|video|folder):.+$",
                           description='camera reading appointment QR codes: "" = none, "opencv:0", '
                           '"picamera2", "video:/path" (device/qr_camera.py)')


class CallingConfig(_Table):
    policy: Literal["fifo", "priority_first", "interleave"] = Field(
        default="priority_first",
        description="fifo: one line by issue order; priority_first: any waiting priority ticket first; "
        "interleave: one priority ticket after every priority_every regular calls",
    )
    priority_every: int = Field(default=3, ge=1, le=50, description="interleave: regular calls per priority")
    appointments_first: bool = Field(
        default=True, description="an appointment ticket whose slot has come is called before all others")
    fields: dict[str, Annotated[str, Field(min_length=1, max_length=60)]] = Field(
        default_factory=dict, max_length=20, description="service field code = label (Vietnamese)")
    priority: PriorityConfig = Field(default_factory=PriorityConfig)
    appointments: AppointmentConfig = Field(default_factory=AppointmentConfig)

    @field_validator("fields")
    @classmethod
    def _codes(cls, v: dict[str, str]) -> dict[str, str]:
        for code in v:
            if not re.fullmatch(FIELD_CODE, code):
                raise ValueError(f"field code {code!r}: lower-case letters, digits, '_' (1-32)")
        return v

    @model_validator(mode="after")
    def _prefixes(self) -> CallingConfig:
        if self.priority.label_prefix and self.priority.label_prefix == self.appointments.label_prefix:
            raise ValueError("priority and appointment label prefixes must differ")
        return self

    def prefixes(self) -> tuple[str, str]:
        return self.priority.label_prefix, self.appointments.label_prefix

    def prefix(self, kind: str) -> str:
        return {"priority": self.priority.label_prefix, "appointment": self.appointments.label_prefix}.get(
            kind, "")


def calling_of(cfg: Any) -> CallingConfig:
    """The kiosk's ``[calling]`` (``cfg.extra["calling"]``, registered in device/config.EXTRA_SECTIONS);
    the defaults for a config built without it."""
    return cfg.extra.get("calling") or DEFAULT_CALLING


def policy_text(c: CallingConfig) -> str:
    """The calling order as the display explains it to citizens (Vietnamese)."""
    parts = []
    if c.appointments_first:
        parts.append("Số hẹn (H) được gọi khi đến giờ hẹn, trước các số khác")
    if c.policy == "priority_first":
        parts.append("số ưu tiên (U) được gọi trước số thường")
    elif c.policy == "interleave":
        parts.append(f"cứ {c.priority_every} số thường thì gọi 1 số ưu tiên (U)")
    parts.append("các số còn lại theo thứ tự lấy số")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


DEFAULT_CALLING = CallingConfig()
