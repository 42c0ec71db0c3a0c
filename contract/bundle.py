"""The signed update bundle format, shared by the signer (provisioning), the gateway (which verifies
an upload before it rolls it out) and the kiosk (device/updates/, which verifies it again before it
applies it). It is in contract/ because that is the only code those three share.

``bundle.tar`` (plain ustar, no compression) holds exactly:

* ``manifest.json``: canonical JSON (see :func:`canonical_json`) of::

    {"format": 1, "version": "1.4.0", "created_at": "...", "offices": ["03390", ...] (empty = all),
     "key_id": "<16 hex>", "files": [{"path": "config/kiosk.toml", "sha256": "<hex>", "size": 123,
     "kind": "config" | "model" | "package"}, ...]}

* ``manifest.sig``: the raw 64-byte Ed25519 signature over the bytes of ``manifest.json``;
* ``files/<path>`` for every listed file, and nothing else.

The bundle id is ``b-`` + the first 16 hex digits of sha256(manifest.json): it names the signed
content, so two different bundles cannot share an id.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = 1
KINDS = ("config", "model", "package")
MAX_BUNDLE_BYTES = 512 * 1024 * 1024
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
FILES_PREFIX = "files/"
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class BundleError(ValueError):
    """A bundle that must not be applied; the message says why (shown to the operator)."""


def canonical_json(obj: Any) -> bytes:
    """Deterministic bytes: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def key_id(public_key_raw: bytes) -> str:
    return hashlib.sha256(public_key_raw).hexdigest()[:16]


def bundle_id_of(manifest_bytes: bytes) -> str:
    return "b-" + hashlib.sha256(manifest_bytes).hexdigest()[:16]


def safe_relpath(path: str) -> str:
    """Reject absolute paths, '..', empty parts, backslashes and the release marker file."""
    p = PurePosixPath(path)
    if (not path or "\\" in path or p.is_absolute() or any(part in ("", ".", "..") for part in p.parts)
            or path != p.as_posix() or path == "release.json" or len(path) > 200):
        raise BundleError(f"unsafe file path in bundle: {path!r}")
    return path


def check_manifest(m: Any) -> dict:
    """Structural validation of a decoded manifest."""
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise BundleError("manifest format is not 1")
    version = m.get("version")
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise BundleError(f"bad version {version!r}")
    offices = m.get("offices", [])
    if not isinstance(offices, list) or not all(isinstance(o, str) for o in offices):
        raise BundleError("offices must be a list of office codes")
    files = m.get("files")
    if not isinstance(files, list) or not files:
        raise BundleError("manifest lists no files")
    seen: set[str] = set()
    for f in files:
        if not isinstance(f, dict) or set(f) != {"path", "sha256", "size", "kind"}:
            raise BundleError(f"bad file entry {f!r}")
        safe_relpath(f["path"])
        if f["path"] in seen:
            raise BundleError(f"duplicate path {f['path']!r}")
        seen.add(f["path"])
        if f["kind"] not in KINDS:
            raise BundleError(f"bad kind {f['kind']!r} for {f['path']}")
        if not isinstance(f["sha256"], str) or not _SHA_RE.match(f["sha256"]):
            raise BundleError(f"bad sha256 for {f['path']}")
        if not isinstance(f["size"], int) or f["size"] < 0:
            raise BundleError(f"bad size for {f['path']}")
    return m


@dataclass(frozen=True)
class VerifiedBundle:
    bundle_id: str
    manifest: dict
    files: dict[str, bytes]  # path -> content, every hash checked

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def offices(self) -> list[str]:
        return list(self.manifest.get("offices", []))


def read_members(data: bytes) -> dict[str, bytes]:
    """Regular files of a tar, refusing links, devices and duplicate names."""
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    raise BundleError(f"bundle member {member.name!r} is not a regular file")
                if member.name in out:
                    raise BundleError(f"duplicate bundle member {member.name!r}")
                fh = tar.extractfile(member)
                out[member.name] = fh.read() if fh else b""
    except tarfile.TarError as exc:
        raise BundleError(f"not a valid tar bundle: {exc}") from None
    return out


def verify_bundle(data: bytes, trusted_keys: list[bytes]) -> VerifiedBundle:
    """Check the signature with any trusted key, then every file's size and sha256."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"bundle is {len(data)} bytes, above the {MAX_BUNDLE_BYTES} limit")
    if not trusted_keys:
        raise BundleError("no trusted update key is configured on this device")
    members = read_members(data)
    manifest_bytes = members.pop(MANIFEST, None)
    sig = members.pop(SIGNATURE, None)
    if manifest_bytes is None or sig is None:
        raise BundleError("bundle lacks manifest.json or manifest.sig")
    for raw in trusted_keys:
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(sig, manifest_bytes)
            break
        except (InvalidSignature, ValueError):
            continue
    else:
        raise BundleError("signature does not verify with any trusted key (tampered or unknown signer)")
    try:
        manifest = check_manifest(json.loads(manifest_bytes))
    except json.JSONDecodeError as exc:
        raise BundleError(f"manifest is not JSON: {exc}") from None
    files: dict[str, bytes] = {}
    for f in manifest["files"]:
        content = members.pop(FILES_PREFIX + f["path"], None)
        if content is None:
            raise BundleError(f"file {f['path']} listed in the manifest is missing")
        if len(content) != f["size"] or hashlib.sha256(content).hexdigest() != f["sha256"]:
            raise BundleError(f"file {f['path']} does not match its sha256 (tampered or corrupted)")
        files[f["path"]] = content
    if members:
        raise BundleError(f"bundle holds files not in the manifest: {sorted(members)[:5]}")
    return VerifiedBundle(bundle_id_of(manifest_bytes), manifest, files)
