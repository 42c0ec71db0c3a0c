"""Apply a verified bundle to the inactive A/B slot, swap ``current`` atomically, roll back if unhealthy.

Wheels in the bundle (``packages/*.whl``) are installed into the staged slot's own venv before the
switch (slots.py); the kiosk then restarts onto that code on probation (restart trial)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from contract.bundle import BundleError, VerifiedBundle, verify_bundle
from contract.payloads import UpdateResult
from device.updates.slots import PACKAGES, CodeInstallError, install_release_code, take_handoff

log = logging.getLogger(__name__)

SLOTS = ("A", "B")
PENDING = "update-pending.json"


def _result(bundle_id: str, version: str, outcome: str, message: str, cmd_id: str | None) -> dict:
    model = UpdateResult(bundle_id=(bundle_id or "unknown")[:200], version=(version or "unknown")[:200],
                         outcome=outcome, message=message[:1000], cmd_id=cmd_id)
    return model.model_dump(mode="json")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def active_slot(data_dir: Path) -> str | None:
    """'A' or 'B' (the slot ``current`` points at), or None before the first update."""
    link = data_dir / "current"
    if not link.is_symlink():
        return None
    name = Path(os.readlink(link)).name
    return name if name in SLOTS else None


def active_release(data_dir: Path) -> dict:
    """The ``release.json`` of the active slot ({} before the first update)."""
    try:
        return json.loads((data_dir / "current" / "release.json").read_text())
    except (OSError, ValueError):
        return {}


def release_dir(data_dir: Path) -> Path | None:
    """The active release folder (``data_dir/releases/A`` or ``B``, not via the symlink), or None."""
    slot = active_slot(Path(data_dir))
    return None if slot is None else Path(data_dir).absolute() / "releases" / slot


HealthCheck = Callable[[], "bool | tuple[bool, str]"]
PreCheck = Callable[[Path], "str | None"]


def _run_health(health_check: HealthCheck) -> tuple[bool, str]:
    """(healthy, reason): a check returns a bool or (bool, reason); an exception is unhealthy."""
    try:
        got = health_check()
    except Exception as exc:
        return False, f"health check raised {type(exc).__name__}: {exc}"
    if isinstance(got, tuple):
        return bool(got[0]), str(got[1] or "health check failed")
    return bool(got), "health check failed"


def _point_current(data_dir: Path, slot: str | None) -> None:
    link, tmp = data_dir / "current", data_dir / "current.tmp"
    if slot is None:
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
    else:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(f"releases/{slot}", tmp)
        os.replace(tmp, link)  # atomic on POSIX: readers see the old or the new release, never neither
    _fsync_dir(data_dir)


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    with open(data_dir / "updates.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BundleError("another update is being applied on this device") from None
        yield


def _version_key(v: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in v.split("."))
    except ValueError:
        return None


def _stage(data_dir: Path, slot: str, prev: str | None, bundle: VerifiedBundle) -> None:
    """Build releases/<slot> = previous release + bundle files, fsynced, then renamed into place."""
    releases = data_dir / "releases"
    releases.mkdir(parents=True, exist_ok=True)
    staging, target = releases / f".{slot}.staging", releases / slot
    shutil.rmtree(staging, ignore_errors=True)
    if prev is not None:
        shutil.copytree(releases / prev, staging, symlinks=True)
    else:
        staging.mkdir()
    for rel, content in bundle.files.items():
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            dest.unlink()  # a copied symlink must not redirect the write
        with open(dest, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
    code = _install_code(staging, bundle)
    meta = {"version": bundle.version, "bundle_id": bundle.bundle_id, "slot": slot, "previous": prev,
            "files": [f["path"] for f in bundle.manifest["files"]], "code": code}
    (staging / "release.json").write_text(json.dumps(meta, indent=1))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    _fsync_dir(releases)


def _install_code(staging: Path, bundle: VerifiedBundle) -> str | None:
    """Wheels in this bundle's packages/ replace the previous release's and are installed into the
    staged release's venv (slots.py); a bundle without wheels keeps the previous release's code."""
    mine = {rel for rel in bundle.files if rel.startswith(f"{PACKAGES}/") and rel.endswith(".whl")}
    if not mine:
        return None
    for old in (staging / PACKAGES).glob("*.whl"):
        if f"{PACKAGES}/{old.name}" not in mine:
            old.unlink()
    return install_release_code(staging)


def handle_apply_update(args: dict, *, data_dir: Path, trusted_keys: list[bytes],
                        health_check: HealthCheck, fetch: Callable[[str], bytes] | None = None,
                        office_code: str | None = None, cmd_id: str | None = None,
                        precheck: PreCheck | None = None) -> dict:
    """Download, verify, stage, pre-check, apply atomically, health-check, roll back.

    ``precheck(staged_release_dir)`` runs before ``current`` is switched: a returned message refuses
    the bundle (nothing activated). ``health_check()`` runs after the switch and returns a bool or
    (bool, reason); unhealthy (or raising) means automatic rollback. Returns ``update.result`` data."""
    data_dir = Path(data_dir)
    cmd_id = cmd_id or (args.get("cmd_id") if isinstance(args.get("cmd_id"), str) else None)
    want_id, want_version = str(args.get("bundle_id") or ""), str(args.get("version") or "")
    url, want_sha = args.get("url"), str(args.get("sha256") or "").lower()
    if not isinstance(url, str) or not url:
        return _result(want_id, want_version, "refused", "apply_update needs args.url", cmd_id)
    try:
        raw = (fetch or _http_fetch)(url)
    except Exception as exc:  # network, HTTP status, timeouts: all reported, never raised
        return _result(want_id, want_version, "refused", f"download failed: {exc}", cmd_id)
    got_sha = hashlib.sha256(raw).hexdigest()
    if want_sha and got_sha != want_sha:
        return _result(want_id, want_version, "refused",
                       f"downloaded bundle sha256 {got_sha[:12]}… does not match {want_sha[:12]}…", cmd_id)
    try:
        bundle = verify_bundle(raw, trusted_keys)
    except BundleError as exc:
        return _result(want_id, want_version, "refused", str(exc), cmd_id)
    bid, version = bundle.bundle_id, bundle.version
    if want_id and want_id != bid:
        return _result(bid, version, "refused", f"bundle id {bid} is not the announced {want_id}", cmd_id)
    if office_code and bundle.offices and office_code not in bundle.offices:
        return _result(bid, version, "refused", f"bundle is not targeted at office {office_code}", cmd_id)
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        with _locked(data_dir):
            return _apply_locked(data_dir, bundle, health_check, cmd_id, precheck)
    except BundleError as exc:
        return _result(bid, version, "refused", str(exc), cmd_id)


def _apply_locked(data_dir: Path, bundle: VerifiedBundle, health_check: HealthCheck,
                  cmd_id: str | None, precheck: PreCheck | None = None) -> dict:
    bid, version = bundle.bundle_id, bundle.version
    prev = active_slot(data_dir)
    current = active_release(data_dir)
    if current.get("bundle_id") == bid:
        return _result(bid, version, "applied", f"already active in slot {prev}", cmd_id)
    old_v, new_v = _version_key(str(current.get("version", ""))), _version_key(version)
    if old_v is not None and new_v is not None and new_v < old_v:
        return _result(bid, version, "refused", f"downgrade from {current['version']} refused", cmd_id)
    slot = "B" if prev == "A" else "A"
    try:
        _stage(data_dir, slot, prev, bundle)
    except OSError as exc:
        return _result(bid, version, "refused", f"could not write slot {slot}: {exc}", cmd_id)
    except CodeInstallError as exc:
        shutil.rmtree(data_dir / "releases" / f".{slot}.staging", ignore_errors=True)
        return _result(bid, version, "refused", f"slot {slot}: {exc}", cmd_id)
    if precheck is not None:
        try:
            problem = precheck(data_dir / "releases" / slot)
        except Exception as exc:
            problem = f"pre-check raised {type(exc).__name__}: {exc}"
        if problem:
            shutil.rmtree(data_dir / "releases" / slot, ignore_errors=True)  # inactive slot: never used
            log.warning("update %s (%s) refused before activation: %s", bid, version, problem)
            return _result(bid, version, "refused", problem, cmd_id)
    pending = data_dir / PENDING
    pending.write_text(json.dumps({"bundle_id": bid, "version": version, "slot": slot, "previous": prev,
                                   "cmd_id": cmd_id}))
    _point_current(data_dir, slot)
    healthy, why = _run_health(health_check)
    if healthy:
        pending.unlink()
        _fsync_dir(data_dir)
        log.info("update %s (%s) applied in slot %s", bid, version, slot)
        return _result(bid, version, "applied", f"version {version} active in slot {slot}", cmd_id)
    _point_current(data_dir, prev)
    pending.unlink()
    back = current.get("version", "the factory install") if prev else "the factory install"
    log.warning("update %s (%s) rolled back: %s", bid, version, why)
    return _result(bid, version, "rolled_back", f"{why}; rolled back to {back}", cmd_id)


def recover_interrupted(data_dir: Path) -> dict | None:
    """Call at kiosk start: if an update was swapped in but never confirmed healthy (crash, power
    cut during the health check, or a restart trial that did not confirm), swap back and return the
    ``update.result`` data to publish. A restart trial (:func:`begin_restart_trial`) is let through
    once: this start is the trial, to be confirmed with :func:`confirm_restart_trial`."""
    handed_over, recovered = take_handoff()
    if handed_over:  # this start was already judged by the process that re-executed into this code
        return recovered
    data_dir = Path(data_dir)
    pending = data_dir / PENDING
    try:
        info = json.loads(pending.read_text())
    except (OSError, ValueError):
        return None
    if info.get("trial") == "restart":
        _write_pending(data_dir, info | {"trial": "started"})
        return None
    prev = info.get("previous") if info.get("previous") in SLOTS else None
    _point_current(data_dir, prev)
    pending.unlink()
    why = ("the kiosk did not come up healthy after restarting on the new version"
           if info.get("trial") == "started" else
           "the kiosk restarted before the new version was confirmed healthy")
    return _result(str(info.get("bundle_id", "")), str(info.get("version", "")), "rolled_back",
                   f"{why}; rolled back", info.get("cmd_id"))


def _write_pending(data_dir: Path, info: dict) -> None:
    tmp = data_dir / (PENDING + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(json.dumps(info))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, data_dir / PENDING)
    _fsync_dir(data_dir)


def begin_restart_trial(data_dir: Path, cmd_id: str | None = None) -> bool:
    """Before re-executing the kiosk on the active release: put it back on probation, so that a start
    that never confirms (crash, no broker) is rolled back by the start after it."""
    data_dir = Path(data_dir)
    rel = active_release(data_dir)
    if not rel.get("slot"):
        return False
    _write_pending(data_dir, {"bundle_id": rel.get("bundle_id"), "version": rel.get("version"),
                              "slot": rel["slot"], "previous": rel.get("previous"), "cmd_id": cmd_id,
                              "trial": "restart"})
    return True


def in_restart_trial(data_dir: Path) -> bool:
    try:
        return json.loads((Path(data_dir) / PENDING).read_text()).get("trial") == "started"
    except (OSError, ValueError):
        return False


def confirm_restart_trial(data_dir: Path) -> bool:
    """The kiosk came up healthy on the new release after its restart: end the probation."""
    data_dir = Path(data_dir)
    if not in_restart_trial(data_dir):
        return False
    (data_dir / PENDING).unlink()
    _fsync_dir(data_dir)
    return True


def _http_fetch(url: str) -> bytes:
    """GET with timeouts and the bundle size cap (the content is verified afterwards anyway).

    Standard library only: the kiosk's install has no HTTP client package (httpx is a gateway and
    test dependency; the virtual Pi found updates failing with "No module named 'httpx'")."""
    import urllib.request

    from contract.bundle import MAX_BUNDLE_BYTES

    if not url.startswith(("http://", "https://")):
        raise ValueError(f"bundle URL must be http(s): {url[:80]}")
    chunks: list[bytes] = []
    size = 0
    with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - scheme checked above
        while chunk := resp.read(1 << 20):
            size += len(chunk)
            if size > MAX_BUNDLE_BYTES:
                raise ValueError(f"bundle larger than {MAX_BUNDLE_BYTES} bytes")
            chunks.append(chunk)
    return b"".join(chunks)
