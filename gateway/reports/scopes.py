"""What a report is about (an office or a unit, with its names) and who may read it.

A unit's report covers the offices of the unit in the registry; an office head reads it only when
every one of those offices is theirs (``Principal.reads_reports_of``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from gateway.auth import Principal
from gateway.store import Store

ScopeKind = Literal["office", "unit"]


@dataclass(frozen=True)
class Scope:
    kind: ScopeKind
    code: str
    name: str
    offices: tuple[str, ...]  # office codes the report covers
    unit_code: str
    unit_name: str
    province_name: str

    def as_dict(self) -> dict[str, Any]:
        place = self.unit_name.removeprefix("Xã ").removeprefix("Phường ").removeprefix("Thị trấn ")
        return {"kind": self.kind, "code": self.code, "name": self.name, "offices": list(self.offices),
                "unit_code": self.unit_code, "unit_name": self.unit_name,
                "province_name": f"UBND tỉnh {self.province_name}" if self.province_name else "",
                "place": place}


def find(store: Store, kind: str, code: str) -> Scope | None:
    """The office or unit ``code``, or None when the registry has no such thing."""
    units = store.units()
    if kind == "office":
        office = store.office(code)
        if office is None:
            return None
        unit = units.get(office["unit_code"], {})
        return Scope("office", code, office["name"], (code,), office["unit_code"], unit.get("name", ""),
                     unit.get("province_name", ""))
    if kind == "unit" and code in units:
        unit = units[code]
        offices = tuple(o["code"] for o in store.offices() if o["unit_code"] == code)
        return Scope("unit", code, unit["name"], offices, code, unit["name"], unit.get("province_name", ""))
    return None


def readable(store: Store, principal: Principal) -> dict[str, list[dict[str, str]]]:
    """The offices and units ``principal`` may read reports of, for the page's selector."""
    offices = store.offices()
    units = store.units()
    by_unit: dict[str, list[str]] = {}
    for o in offices:
        by_unit.setdefault(o["unit_code"], []).append(o["code"])
    return {
        "offices": [{"code": o["code"], "name": o["name"]} for o in offices
                    if principal.reads_reports_of([o["code"]])],
        "units": [{"code": c, "name": units[c]["name"]} for c in sorted(by_unit)
                  if c in units and principal.reads_reports_of(by_unit[c])],
    }
