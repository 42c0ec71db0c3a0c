"""Register a device with the gateway (POST /api/v1/devices), or queue it in an outbox when offline.

The outbox is a JSON-lines file in the CA folder; ``motcua-provision register --flush`` uploads it.
Network errors, 5xx, 401/403/429 keep an entry for a later retry; other 4xx answers (unknown office,
counter out of range) move it to ``outbox.rejected.jsonl`` with the gateway's reason.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import httpx

RETRY_STATUS = {401, 403, 408, 425, 429}


@dataclass
class Outcome:
    state: str  # registered | queued | rejected
    detail: str


def post(gateway: str, token: str, entry: dict, timeout: float = 10.0) -> Outcome:
    url = gateway.rstrip("/") + "/api/v1/devices"
    body = {k: entry[k] for k in ("device_id", "office_code", "counter")}
    try:
        r = httpx.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
    except httpx.HTTPError as exc:
        return Outcome("queued", f"gateway unreachable ({type(exc).__name__})")
    if r.status_code in (200, 201):
        return Outcome("registered", f"HTTP {r.status_code}")
    try:
        detail = str(r.json().get("detail", r.text))
    except ValueError:
        detail = r.text[:200]
    if r.status_code >= 500 or r.status_code in RETRY_STATUS:
        return Outcome("queued", f"HTTP {r.status_code}: {detail}")
    return Outcome("rejected", f"HTTP {r.status_code}: {detail}")


def _append(path: Path, entry: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def register(outbox: Path, gateway: str | None, token: str | None, entry: dict) -> Outcome:
    """Try now; queue on failure (also when no gateway/token was given)."""
    entry = {**entry, "gateway": gateway or entry.get("gateway")}
    if entry["gateway"] and token:
        out = post(entry["gateway"], token, entry)
    else:
        out = Outcome("queued", "no gateway URL or token given")
    if out.state == "queued":
        _append(outbox, entry)
    elif out.state == "rejected":
        _append(outbox.with_name("outbox.rejected.jsonl"), {**entry, "error": out.detail})
    return out


def pending(outbox: Path) -> list[dict]:
    if not outbox.exists():
        return []
    return [json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines() if line.strip()]


def flush(outbox: Path, token: str, gateway: str | None = None) -> list[tuple[dict, Outcome]]:
    """Send every queued registration; keeps the ones still failing. ``gateway`` overrides stored URLs."""
    results: list[tuple[dict, Outcome]] = []
    keep: list[dict] = []
    for entry in pending(outbox):
        url = gateway or entry.get("gateway")
        out = post(url, token, entry) if url else Outcome("queued", "no gateway URL")
        results.append((entry, out))
        if out.state == "queued":
            keep.append(entry)
        elif out.state == "rejected":
            _append(outbox.with_name("outbox.rejected.jsonl"), {**entry, "error": out.detail})
    tmp = outbox.with_name(outbox.name + ".tmp")
    tmp.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in keep), encoding="utf-8")
    os.replace(tmp, outbox)
    return results
