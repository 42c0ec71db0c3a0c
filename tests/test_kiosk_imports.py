"""The kiosk imports only what its install carries: the core dependencies and the ``kiosk`` extra
(pyproject.toml) and what they pull in. The image a technician flashes has nothing else (no HTTP
client library, no SQLAlchemy): an import of a gateway or test package in device/ passes every x86
test here and stops the kiosk at start on a Pi. The virtual Pi found two (``httpx`` in the update
fetch, then in the shared lines' counter client); this check finds them without booting one.

device/simulate/ is the development simulator (demo citizens), never started on a kiosk.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"contract", "device", "models"}
# From the OS, not from pip, and imported only after a find_spec check that turns its absence into a
# clear error: Raspberry Pi OS's python3-picamera2 (device/vision/camera.py).
SYSTEM_OPTIONAL = {"picamera2"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _kiosk_distributions() -> set[str]:
    """The core + kiosk requirements and, transitively, theirs (without their own extras)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    todo = [_name(r) for r in project["dependencies"] + project["optional-dependencies"]["kiosk"]]
    seen: set[str] = set()
    while todo:
        dist = todo.pop()
        if dist in seen:
            continue
        seen.add(dist)
        try:
            requires = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:  # a platform-only requirement (not installed on x86)
            continue
        for req in requires:
            if "extra ==" not in req:
                todo.append(_name(req))
    return seen


def _third_party_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - FIRST_PARTY - SYSTEM_OPTIONAL - {"__future__"}


def test_the_kiosk_imports_only_what_its_install_carries() -> None:
    allowed = _kiosk_distributions()
    providers = metadata.packages_distributions()
    outside = {}
    for path in sorted((ROOT / "device").rglob("*.py")):
        if "simulate" in path.relative_to(ROOT / "device").parts:
            continue
        for module in _third_party_imports(path):
            dists = {d.lower().replace("_", "-") for d in providers.get(module, [module])}
            if not dists & allowed:
                outside.setdefault(module, []).append(str(path.relative_to(ROOT)))
    assert not outside, f"device/ imports packages the kiosk's install lacks: {outside}"
