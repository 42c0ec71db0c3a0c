"""Office registry files (TOML or JSON): units, old→new unit mapping, offices, devices."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

REQUIRED = {
    "units": ("code", "name"),
    "unit_mapping": ("old_name", "new_code"),
    "offices": ("code", "name", "unit_code", "lat", "lon"),
    "devices": ("device_id", "office_code"),
}


def load_registry(path: Path) -> dict[str, Any]:
    """Parse and check a registry file; ``ValueError`` names the entry and key at fault."""
    text = path.read_text(encoding="utf-8")
    try:
        doc = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: cannot parse: {exc}") from None
    for section, keys in REQUIRED.items():
        for i, entry in enumerate(doc.get(section, [])):
            for k in keys:
                if k not in entry:
                    raise ValueError(f"{path}: [[{section}]] #{i + 1} lacks {k!r}")
    unit_codes = {u["code"] for u in doc.get("units", [])}
    for o in doc.get("offices", []):
        if o["unit_code"] not in unit_codes:
            raise ValueError(f"{path}: office {o['code']} has unknown unit_code {o['unit_code']!r}")
    office_codes = {o["code"] for o in doc.get("offices", [])}
    for d in doc.get("devices", []):
        if d["office_code"] not in office_codes:
            raise ValueError(f"{path}: device {d['device_id']} has unknown office_code {d['office_code']!r}")
    return doc
