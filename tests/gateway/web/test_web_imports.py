"""A missing package stops the gateway with its name; it never silently unmounts the web pages.

Before, ``create_app`` imported the web routes inside ``try/except ImportError`` and only logged a
warning: without Jinja2 the gateway started and ``/map`` and ``/login`` answered 404.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
sys.modules["jinja2"] = None  # as if the package were not installed
from gateway.app import create_app
from gateway.config import Settings
app = create_app(Settings.from_dict({"data_dir": sys.argv[1], "auth": {"secret_key": "s" * 40}}, env={}))
print(sorted(getattr(r, "path", "") for r in app.routes if getattr(r, "path", "") in ("/map", "/login")))
"""


def test_missing_package_fails_loudly(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0, f"started without its web pages: {r.stdout}"
    assert "jinja2" in r.stderr
