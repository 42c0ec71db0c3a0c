"""Signed update bundles on the gateway: upload (verified here too), list, staged rollout, download.

* ``POST /api/v1/updates`` (admin): body = a ``bundle.tar`` signed with ``motcua-provision update sign``.
  Verified against the trusted keys in ``<data_dir>/updates/trusted_keys`` (one hex Ed25519 public key
  a line; ``POST /api/v1/updates/keys`` adds one) or ``MOTCUA_UPDATE_KEYS`` (comma separated).
* ``GET /api/v1/updates`` and ``GET /api/v1/updates/{id}`` (operator): bundles, rollouts and each
  device's outcome (the kiosk's ``update.result`` event settles the command row; the latest by
  device seq wins, so a ``rolled_back`` after a failed restart trial replaces ``applied``).
* ``POST /api/v1/updates/{id}/rollout`` (admin): ``{"offices": [...]}`` sends ``apply_update`` to every
  registered device of those offices (a stage); offices outside the bundle's targets are refused.
* ``GET /api/v1/updates/{id}/bundle.tar`` (no login: kiosks fetch it; the content is signed and the
  id is derived from its hash).

The gateway never holds the signing key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from contract.bundle import BundleError, verify_bundle
from contract.payloads import CommandName
from gateway.api_common import AdminUser, OperatorUser, StoreDep
from gateway.auth import Principal
from gateway.commands import issue_command

KEYS_ENV = "MOTCUA_UPDATE_KEYS"
_BUNDLE_ID = re.compile(r"^b-[0-9a-f]{16}$")
_HEX_KEY = re.compile(r"^[0-9a-f]{64}$")

router = APIRouter(tags=["updates"])

Publish = Callable[[str, str, str, dict], str]
"""publish(device_id, office_code, command_name, args) -> cmd_id (raises on failure)."""


# ---------------------------------------------------------------------------- storage


def updates_dir(request: Request) -> Path:
    d = Path(request.app.state.settings.data_dir) / "updates"
    d.mkdir(parents=True, exist_ok=True)
    return d


UpdatesDir = Annotated[Path, Depends(updates_dir)]


def trusted_keys(base: Path) -> list[bytes]:
    keys: list[str] = [k.strip().lower() for k in os.environ.get(KEYS_ENV, "").split(",") if k.strip()]
    f = base / "trusted_keys"
    if f.exists():
        keys += [ln.strip().lower() for ln in f.read_text().splitlines() if ln.strip() and ln[0] != "#"]
    return [bytes.fromhex(k) for k in dict.fromkeys(keys) if _HEX_KEY.match(k)]


def _meta(base: Path, bundle_id: str) -> dict[str, Any]:
    if not _BUNDLE_ID.match(bundle_id):
        raise HTTPException(404, f"no bundle {bundle_id!r}")
    try:
        return json.loads((base / bundle_id / "meta.json").read_text())
    except FileNotFoundError:
        raise HTTPException(404, f"no bundle {bundle_id!r}") from None


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False))
    os.replace(tmp, path)


def store_bundle(base: Path, data: bytes, uploaded_by: str) -> tuple[dict[str, Any], bool]:
    """Verify and store; returns (meta, created). Raises BundleError when refused."""
    bundle = verify_bundle(data, trusted_keys(base))
    folder = base / bundle.bundle_id
    if (folder / "meta.json").exists():
        return json.loads((folder / "meta.json").read_text()), False
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "bundle.tar.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, folder / "bundle.tar")
    meta = {"bundle_id": bundle.bundle_id, "version": bundle.version, "offices": bundle.offices,
            "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "files": [{k: f[k] for k in ("path", "kind", "size")} for f in bundle.manifest["files"]],
            "key_id": bundle.manifest.get("key_id"), "uploaded_by": uploaded_by,
            "uploaded_at": datetime.now(UTC).isoformat(timespec="seconds"), "rollouts": []}
    _write_json(folder / "meta.json", meta)
    return meta, True


# ---------------------------------------------------------------------------- rollout


def start_rollout(meta: dict[str, Any], devices: list[dict[str, Any]], offices: list[str], url: str,
                  publish: Publish) -> dict[str, Any]:
    """Send ``apply_update`` to the registered devices of ``offices``; returns the stage record.

    ``devices`` are gateway registry rows (device_id, office_code, registered). A device whose
    publish fails is recorded with its error and does not stop the stage.
    """
    targets = set(meta.get("offices") or [])
    outside = sorted(set(offices) - targets) if targets else []
    if outside:
        raise ValueError(f"bundle {meta['bundle_id']} is not targeted at offices {outside}")
    args = {"url": url, "sha256": meta["sha256"], "bundle_id": meta["bundle_id"], "version": meta["version"]}
    stage: dict[str, Any] = {"stage": len(meta.get("rollouts", [])) + 1, "offices": sorted(set(offices)),
                             "started_at": datetime.now(UTC).isoformat(timespec="seconds"), "devices": []}
    for d in sorted(devices, key=lambda r: (r["office_code"], r["device_id"])):
        if d["office_code"] not in stage["offices"] or not d.get("registered", True):
            continue
        entry = {"device_id": d["device_id"], "office_code": d["office_code"]}
        try:
            entry["cmd_id"] = publish(d["device_id"], d["office_code"], CommandName.APPLY_UPDATE.value, args)
        except Exception as exc:  # one unreachable device must not stop the stage
            entry["error"] = str(exc)[:200]
        stage["devices"].append(entry)
    return stage


def app_publisher(request: Request, issued_by: str) -> Publish:
    """Rollout publisher: the same path as the command API (gateway.commands.issue_command)."""
    st = request.app.state

    def publish(device_id: str, office_code: str, name: str, args: dict) -> str:
        return issue_command(st, device_id, office_code, name, args, issued_by)

    return publish


# ---------------------------------------------------------------------------- routes


class RolloutIn(BaseModel):
    offices: list[str] = Field(min_length=1, max_length=500)
    base_url: str | None = Field(default=None, description="Gateway URL the kiosks can reach; "
                                 "default: the URL this request came in on.")


class KeyIn(BaseModel):
    public_key: str = Field(pattern=r"^[0-9a-fA-F]{64}$")


def _who(p: Principal) -> str:
    return str(getattr(p, "name", None) or "gateway")


@router.post("/api/v1/updates/keys", status_code=201)
def add_key(body: KeyIn, base: UpdatesDir, _p: AdminUser) -> dict[str, Any]:
    key = body.public_key.lower()
    f = base / "trusted_keys"
    lines = f.read_text().splitlines() if f.exists() else []
    if key not in lines:
        f.write_text("\n".join([*lines, key]) + "\n")
    return {"trusted_keys": [k.hex() for k in trusted_keys(base)]}


@router.post("/api/v1/updates", status_code=201)
async def upload_bundle(request: Request, response: Response, base: UpdatesDir,
                        p: AdminUser) -> dict[str, Any]:
    data = await request.body()
    if not data:
        raise HTTPException(422, "empty body: send the bundle.tar bytes (Content-Type: application/x-tar)")
    try:
        meta, created = store_bundle(base, data, _who(p))
    except BundleError as exc:
        raise HTTPException(422, f"bundle refused: {exc}") from None
    if not created:
        response.status_code = 200
    return meta


@router.get("/api/v1/updates")
def list_bundles(base: UpdatesDir, _p: OperatorUser) -> list[dict[str, Any]]:
    out = []
    for m in sorted(base.glob("b-*/meta.json")):
        meta = json.loads(m.read_text())
        out.append({k: meta[k] for k in ("bundle_id", "version", "offices", "size", "uploaded_at")}
                   | {"stages": len(meta["rollouts"])})
    return sorted(out, key=lambda r: r["uploaded_at"], reverse=True)


@router.get("/api/v1/updates/{bundle_id}")
def bundle_detail(bundle_id: str, base: UpdatesDir, store: StoreDep, _p: OperatorUser) -> dict[str, Any]:
    """The bundle with each rollout stage's per-device command status and update outcome."""
    meta = _meta(base, bundle_id)
    summary: dict[str, int] = {}
    for stage in meta["rollouts"]:
        for d in stage["devices"]:
            row = store.command(d["cmd_id"]) if d.get("cmd_id") else None
            result = (row or {}).get("result") or {}
            d["status"] = row["status"] if row else "not_sent"
            # the device's latest update.result or cmd.result (details.outcome) by seq: see store.writer
            d["outcome"] = result.get("outcome") or (result.get("details") or {}).get("outcome")
            d["message"] = result.get("message") or d.get("error")
            key = d["outcome"] or d["status"]
            summary[key] = summary.get(key, 0) + 1
    return meta | {"summary": summary}


@router.post("/api/v1/updates/{bundle_id}/rollout", status_code=202)
def rollout(bundle_id: str, body: RolloutIn, request: Request, base: UpdatesDir, store: StoreDep,
            p: AdminUser) -> dict[str, Any]:
    meta = _meta(base, bundle_id)
    root = (body.base_url or str(request.base_url)).rstrip("/")
    if not root.startswith(("http://", "https://")):
        raise HTTPException(422, "base_url must start with http:// or https://")
    url = f"{root}/api/v1/updates/{bundle_id}/bundle.tar"
    known = {o["code"] for o in store.offices()}
    unknown = sorted(set(body.offices) - known)
    if unknown:
        raise HTTPException(422, f"unknown office codes {unknown}")
    try:
        stage = start_rollout(meta, store.devices(), body.offices, url,
                              app_publisher(request, _who(p)))
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    meta["rollouts"].append(stage)
    _write_json(base / bundle_id / "meta.json", meta)
    return stage


@router.get("/api/v1/updates/{bundle_id}/bundle.tar")
def download_bundle(bundle_id: str, base: UpdatesDir) -> FileResponse:
    meta = _meta(base, bundle_id)
    return FileResponse(base / bundle_id / "bundle.tar", media_type="application/x-tar",
                        headers={"Cache-Control": "no-store", "X-Bundle-Sha256": meta["sha256"]})


