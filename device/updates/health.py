"""Is a release fit to run? Checks run in child processes so a bad release cannot hurt the kiosk.

* :func:`precheck_config`: before activation, in-process: the kiosk's own parser on
  (local config + the release's ``config/kiosk.toml`` overlay). Invalid = the bundle is refused.
* :func:`check_release`: after ``current`` is switched, with the release's own interpreter when it
  carries kiosk code (slots.py), else this one: ``python -m device.cli check-config
  --config <local> --release <dir>`` and, when the release carries ``models/``,
  ``python -m device.updates.modelcheck <models>`` for the release's ``models/`` and the effective
  ``[camera] models_dir`` (sha256 against that folder's manifest.json, ONNX load, one inference).
  Any failure or timeout = rollback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from device.config import RELEASE_CONFIG, RELEASE_MODELS, ConfigError, load_config
from device.updates.slots import release_python

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the ``device`` package
CHECK_TIMEOUT_S = 180.0  # generous: a loaded Pi (or CI box) may take long to import onnxruntime


def precheck_config(local_config: str | Path | None, release: Path) -> str | None:
    """None when the effective config of ``release`` parses, else the reason (bundle refused)."""
    if local_config is None:
        if (release / RELEASE_CONFIG).is_file():
            return "this kiosk runs without a config file; a bundle config cannot be overlaid"
        return None
    try:
        load_config(local_config, release)
    except ConfigError as exc:
        return f"bundle config rejected by the kiosk's parser: {exc}"
    return None


def _run(cmd: list[str], what: str, timeout: float) -> str | None:
    try:
        proc = subprocess.run(cmd, cwd=PACKAGE_ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"{what} did not finish within {timeout:.0f} s"
    except OSError as exc:
        return f"{what} could not run: {exc}"
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        return f"{what} failed (exit {proc.returncode}): {lines[-1] if lines else 'no output'}"[:600]
    return None


def check_release(local_config: str | Path, release: Path, timeout: float = CHECK_TIMEOUT_S) -> str | None:
    """None when the release's effective config and models check out in child processes.

    Models checked: the release's ``models/`` (if it has one) and, with the camera enabled, the
    effective ``[camera] models_dir`` (what the vision pipeline will load)."""
    local_config, release = Path(local_config).absolute(), Path(release).absolute()  # the child's cwd differs
    code = release_python(release)  # a release with kiosk code is checked by that code, not this one
    py = [str(code), "-P"] if code else [sys.executable]  # -P: not the cwd's device/ package
    problem = _run([*py, "-m", "device.cli", "check-config", "--config", str(local_config),
                    "--release", str(release)], "config check", timeout)
    if problem:
        return problem
    dirs = [release / RELEASE_MODELS] if (release / RELEASE_MODELS).is_dir() else []
    try:
        cfg = load_config(local_config, release)
    except ConfigError as exc:  # the child said OK; a change in between is still a failure
        return f"config check failed: {exc}"
    if cfg.vision is not None and Path(cfg.vision.models_dir) not in dirs:
        dirs.append(Path(cfg.vision.models_dir))
    for models in dirs:
        cmd = [*py, "-m", "device.updates.modelcheck", str(models)]
        problem = _run(cmd, "model check", timeout)
        if problem:
            return problem
    return None
