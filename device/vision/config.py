"""The ``[camera]`` table of the kiosk config, validated into a frozen VisionConfig."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
SOURCE_KINDS = ("opencv", "picamera2", "folder", "video")
MIN_K = 3  # privacy floor: a window over 1-2 visits would all but show a person's own expressions

_KEYS = {
    "enabled",
    "source",
    "fps",
    "window_s",
    "k",
    "watchdog_s",
    "models_dir",
    "min_face_px",
    "motion_threshold",
    "min_score",
    "classifier",
}


def _err(key: str, msg: str) -> ValueError:
    return ValueError(f"[camera] {key}: {msg}")


@dataclass(frozen=True)
class VisionConfig:
    """Camera/vision settings. ``source`` is ``opencv:<index|device path>``, ``picamera2``,
    ``folder:/path`` (images, looped) or ``video:/path`` (looped)."""

    enabled: bool = False
    source: str = "opencv:0"
    fps: float = 4.0
    window_s: float = 3600.0
    k: int = 5
    watchdog_s: float = 5.0
    models_dir: Path = field(default=DEFAULT_MODELS_DIR)
    min_face_px: int = 40
    motion_threshold: float = 2.0
    min_score: float = 0.6
    classifier: str | None = None  # a models/manifest.json entry; None: its default_classifier

    @property
    def source_kind(self) -> str:
        return self.source.split(":", 1)[0]

    @property
    def source_arg(self) -> str:
        return self.source.split(":", 1)[1] if ":" in self.source else ""

    @classmethod
    def from_table(cls, table: dict[str, Any] | None) -> VisionConfig:
        """Build from a parsed TOML table; raises ValueError naming the bad key."""
        table = dict(table or {})
        unknown = sorted(set(table) - _KEYS)
        if unknown:
            raise _err(unknown[0], f"unknown key (known: {', '.join(sorted(_KEYS))})")
        d = cls()
        enabled = table.get("enabled", d.enabled)
        if not isinstance(enabled, bool):
            raise _err("enabled", "must be true or false")
        source = table.get("source", d.source)
        if not isinstance(source, str) or source.split(":", 1)[0] not in SOURCE_KINDS:
            raise _err("source", f"must start with one of {', '.join(SOURCE_KINDS)} (got {source!r})")
        kind, _, arg = source.partition(":")
        if kind in ("folder", "video") and not arg:
            raise _err("source", f"'{kind}:' needs a path, e.g. '{kind}:/srv/frames'")
        fps = _number(table, "fps", d.fps)
        if fps <= 0:
            raise _err("fps", "must be > 0")
        if fps > 30:
            raise _err("fps", "must be <= 30")
        window_s = _number(table, "window_s", d.window_s)
        if window_s <= 0 or window_s > 86400:
            raise _err("window_s", "must be > 0 and <= 86400")
        k = table.get("k", d.k)
        if not isinstance(k, int) or isinstance(k, bool) or k < MIN_K:
            raise _err("k", f"must be an integer >= {MIN_K} (fewer visits would expose one person)")
        watchdog_s = _number(table, "watchdog_s", d.watchdog_s)
        if watchdog_s <= 0:
            raise _err("watchdog_s", "must be > 0")
        models_dir = table.get("models_dir", d.models_dir)
        if not isinstance(models_dir, str | Path) or not str(models_dir):
            raise _err("models_dir", "must be a path")
        min_face_px = table.get("min_face_px", d.min_face_px)
        if not isinstance(min_face_px, int) or isinstance(min_face_px, bool) or min_face_px < 8:
            raise _err("min_face_px", "must be an integer >= 8")
        motion_threshold = _number(table, "motion_threshold", d.motion_threshold)
        if motion_threshold < 0:
            raise _err("motion_threshold", "must be >= 0")
        min_score = _number(table, "min_score", d.min_score)
        if not 0 < min_score < 1:
            raise _err("min_score", "must be between 0 and 1")
        classifier = table.get("classifier", d.classifier)
        if classifier is not None and (not isinstance(classifier, str) or not classifier):
            raise _err("classifier", "must be a model name from models/manifest.json")
        return cls(
            classifier=classifier,
            enabled=enabled,
            source=source,
            fps=fps,
            window_s=window_s,
            k=k,
            watchdog_s=watchdog_s,
            models_dir=Path(models_dir),
            min_face_px=min_face_px,
            motion_threshold=motion_threshold,
            min_score=min_score,
        )


def _number(table: dict[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _err(key, f"must be a number (got {value!r})")
    return float(value)
