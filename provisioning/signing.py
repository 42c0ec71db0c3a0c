"""The operator's offline Ed25519 update key and bundle signing (format: contract/bundle.py).

Keep the private key off the gateway: sign on the operator's offline machine, upload the signed
bundle. Kiosks trust the public key listed in their ``[updates] trusted_keys``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import tarfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.bundle import (
    FILES_PREFIX,
    FORMAT,
    KINDS,
    MANIFEST,
    SIGNATURE,
    BundleError,
    VerifiedBundle,
    bundle_id_of,
    canonical_json,
    check_manifest,
    key_id,
    verify_bundle,
)

MODEL_SUFFIXES = (".onnx", ".tflite", ".bin")
PACKAGE_SUFFIXES = (".whl", ".deb", ".tar.gz")


def generate_key(path: Path) -> bytes:
    """Write a new private key (PEM, 0600; refuses to overwrite); returns the raw public key."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists; refusing to overwrite a signing key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return public_raw(key)


def load_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def public_raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def kind_of(rel: str) -> str:
    """config | model | package, from the top folder (config/, models/, packages/) or the suffix."""
    top = rel.split("/", 1)[0]
    if top in ("config", "model", "models") or rel.endswith(".toml"):
        return "model" if top in ("model", "models") else "config"
    if top in ("package", "packages") or rel.endswith(PACKAGE_SUFFIXES):
        return "package"
    if rel.endswith(MODEL_SUFFIXES):
        return "model"
    return "config"


def build_manifest(src: Path, version: str, offices: list[str], pub: bytes,
                   kinds: dict[str, str] | None = None) -> tuple[dict, dict[str, bytes]]:
    src = Path(src)
    if not src.is_dir():
        raise BundleError(f"{src} is not a folder")
    files: dict[str, bytes] = {}
    entries = []
    for path in sorted(p for p in src.rglob("*") if p.is_file() or p.is_symlink()):
        if path.is_symlink():
            raise BundleError(f"{path} is a symlink; bundles hold regular files only")
        rel = path.relative_to(src).as_posix()
        data = path.read_bytes()
        kind = (kinds or {}).get(rel) or kind_of(rel)
        if kind not in KINDS:
            raise BundleError(f"kind {kind!r} for {rel}")
        files[rel] = data
        entries.append({"path": rel, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                        "kind": kind})
    manifest = {"format": FORMAT, "version": version, "offices": sorted(set(offices)), "key_id": key_id(pub),
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "files": entries}
    check_manifest(manifest)
    return manifest, files


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def pack(manifest_bytes: bytes, signature: bytes, files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _add(tar, MANIFEST, manifest_bytes)
        _add(tar, SIGNATURE, signature)
        for rel, data in files.items():
            _add(tar, FILES_PREFIX + rel, data)
    return buf.getvalue()


def sign_bundle(key: Ed25519PrivateKey, src: Path, version: str, offices: list[str] | None = None,
                out: Path | None = None) -> tuple[str, bytes]:
    """Build, sign and (if ``out``) write bundle.tar; returns (bundle_id, bytes). Self-verified."""
    pub = public_raw(key)
    manifest, files = build_manifest(src, version, offices or [], pub)
    manifest_bytes = canonical_json(manifest)
    data = pack(manifest_bytes, key.sign(manifest_bytes), files)
    verified: VerifiedBundle = verify_bundle(data, [pub])
    if out is not None:
        Path(out).write_bytes(data)
    assert verified.bundle_id == bundle_id_of(manifest_bytes)
    return verified.bundle_id, data
