"""Kiosk code in a release: the wheels a bundle carries in ``packages/`` become ``<release>/venv``.

Invariants and reasons:

* The release venv holds only what the bundle brings (the kiosk wheel, any new dependency); the
  running install's site-packages are reached through a ``.pth`` file placed after the venv's own
  site-packages, so the new kiosk code shadows the old and large dependencies (onnxruntime, OpenCV,
  numpy) are not copied per slot. Installs are offline: ``--no-index`` with the bundle's
  ``packages/`` (and the image's wheelhouse, if any) as the only sources.
* The venv is built while the release is staged (inactive slot), so a failed install refuses the
  bundle before anything is switched. Only ``bin/python`` is used afterwards (a venv's scripts have
  absolute paths; the staging folder is renamed into place).
* At start the kiosk runs :func:`exec_release_code` right after update recovery: when the active
  release carries code and this process runs other code, it re-executes itself (same pid, so
  systemd's notify socket and watchdog carry over) with ``python -P -m device.cli``. The recovery
  done by the first process is handed over in the environment (:data:`HANDOFF_ENV`), so the new
  code does not judge the same start twice. A new release whose code never confirms is rolled back
  by the next start of the factory install (systemd restarts it), which then runs the previous code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

VENV = "venv"
PACKAGES = "packages"
WHEELHOUSE = Path("/opt/motcua/wheelhouse")  # the image's offline wheels (virtual Pi, field images)
HANDOFF_ENV = "MOTCUA_UPDATE_RECOVERY"
FACTORY_ENV = "MOTCUA_FACTORY_PYTHON"
INSTALL_TIMEOUT_S = 900.0  # a Pi 4 on a slow card, or a virtual Pi under emulation


class CodeInstallError(RuntimeError):
    """The release's wheels could not be installed (the bundle is refused)."""


def release_python(release: Path | None) -> Path | None:
    """The release venv's interpreter, or None when the release carries no kiosk code."""
    if release is None:
        return None
    py = Path(release) / VENV / "bin" / "python"
    return py if py.exists() else None


def wheels_of(release: Path) -> list[Path]:
    return sorted((Path(release) / PACKAGES).glob("*.whl"))


def _site_dirs() -> list[str]:
    """This interpreter's package folders, to be visible (after its own) from a release venv."""
    return [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]


def _purelib(py: Path) -> Path:
    out = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                         capture_output=True, text=True, timeout=120, check=True)
    return Path(out.stdout.strip())


def install_release_code(release: Path, timeout: float = INSTALL_TIMEOUT_S) -> str | None:
    """Build ``release/venv`` from the release's wheels. Returns a note, or None without wheels.

    Raises CodeInstallError with pip's last lines when the install fails."""
    release = Path(release)
    wheels = wheels_of(release)
    if not wheels:
        return None
    venv = release / VENV
    cmds = [[sys.executable, "-m", "venv", "--clear", "--without-pip", str(venv)]]
    try:
        subprocess.run(cmds[0], capture_output=True, text=True, timeout=timeout, check=True)
        py = venv / "bin" / "python"
        (_purelib(py) / "motcua-running-install.pth").write_text("\n".join(_site_dirs()) + "\n")
        links = ["--find-links", str(release / PACKAGES)]
        if WHEELHOUSE.is_dir():
            links += ["--find-links", str(WHEELHOUSE)]
        pip = [sys.executable, "-m", "pip", "--python", str(py), "--disable-pip-version-check",
               "install", "--no-index", "--no-cache-dir", *links, *map(str, wheels)]
        subprocess.run(pip, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.CalledProcessError as exc:
        lines = [ln for ln in (exc.stderr or exc.stdout or "").splitlines() if ln.strip()]
        raise CodeInstallError(f"installing {', '.join(w.name for w in wheels)} failed: "
                               f"{lines[-1] if lines else exc}"[:600]) from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CodeInstallError(f"installing the release's wheels failed: {exc}"[:600]) from None
    return f"kiosk code from {', '.join(w.name for w in wheels)}"


def _factory_python() -> Path:
    """The interpreter of the installed (factory) kiosk: the first process's, kept in the environment
    so a process running a release's code can go back to it when that release is rolled back."""
    value = os.environ.get(FACTORY_ENV)
    if not value:
        value = os.environ[FACTORY_ENV] = sys.executable
    return Path(value)


def target_python(release: Path | None) -> Path:
    """The interpreter that must run the kiosk for this active release."""
    return release_python(release) or _factory_python()


def _runs(py: Path) -> bool:
    return Path(sys.prefix).resolve() == py.parent.parent.resolve()


def code_changed(data_dir: Path) -> bool:
    """After an update was switched in: must the kiosk restart to run the active release's code?"""
    from device.updates.apply import release_dir

    return not _runs(target_python(release_dir(Path(data_dir))))


def take_handoff() -> tuple[bool, dict | None]:
    """(handed over?, recovered update.result data) for a process re-executed by exec_release_code."""
    raw = os.environ.pop(HANDOFF_ENV, None)
    if raw is None:
        return False, None
    try:
        info = json.loads(raw)
    except ValueError:
        return False, None
    if info.get("pid") != os.getpid():  # inherited by some child, not a handover to us
        return False, None
    return True, info.get("recovered")


def exec_release_code(data_dir: Path, recovered: dict | None, argv: list[str] | None = None) -> None:
    """Re-execute this kiosk with the interpreter the active release needs (its venv, or the factory
    install after a rollback) if this process runs another. Does not return in that case."""
    from device.updates.apply import release_dir

    release = release_dir(Path(data_dir))
    py = target_python(release)
    if _runs(py):
        return
    os.environ[HANDOFF_ENV] = json.dumps({"pid": os.getpid(), "recovered": recovered})
    args = [str(py), "-P", "-m", "device.cli", *(sys.argv[1:] if argv is None else argv)]
    has_code = release is not None and release_python(release) is not None
    where = f"release {release.name}" if has_code else "factory install"
    print(f"running the kiosk code of the {where}: {py}", file=sys.stderr, flush=True)
    os.execv(str(py), args)
