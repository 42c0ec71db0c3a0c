"""The ``[camera]`` table of the kiosk config, validated into a frozen pydantic ``VisionConfig``
(unknown keys refused, types strict, bounds on the fields). A bad value raises
``contract.config_errors.ConfigError`` naming the key, e.g. ``config error: [camera] fps: must be > 0``.

``k`` has a privacy floor (``MIN_K``): a window over one or two visits would all but show a person's
own expressions, so fewer is refused with that reason, not only with a bound.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contract.config_errors import from_validation

DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
SOURCE_KINDS = ("opencv", "picamera2", "folder", "video")
MIN_K = 3  # privacy floor: a window over 1-2 visits would all but show a person's own expressions

Finite = Annotated[float, Field(allow_inf_nan=False)]


class VisionConfig(BaseModel):
    """Camera/vision settings. ``source`` is ``opencv:<index|device path>``, ``picamera2``,
    ``folder:/path`` (images, looped) or ``video:/path`` (looped)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    enabled: bool = Field(False, description="run the camera and expression analysis")
    source: str = Field("opencv:0", description=f"one of {', '.join(SOURCE_KINDS)}, with ':<arg>'")
    fps: Finite = Field(4.0, gt=0, le=30, description="frames analysed per second")
    window_s: Finite = Field(3600.0, gt=0, le=86400, description="length of one aggregate window")
    k: int = Field(5, le=100_000, description=f"visits per published window (>= {MIN_K}, privacy)")
    watchdog_s: Finite = Field(5.0, gt=0, le=3600, description="restart the camera after this silence")
    models_dir: Path = Field(DEFAULT_MODELS_DIR, strict=False, description="folder with manifest.json")
    min_face_px: int = Field(40, ge=8, le=4096, description="smaller faces are not classified")
    motion_threshold: Finite = Field(2.0, ge=0, le=255, description="mean pixel change that wakes it")
    min_score: Finite = Field(0.6, gt=0, lt=1, description="detector confidence for a face")

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        kind, _, arg = v.partition(":")
        if kind not in SOURCE_KINDS:
            raise ValueError(f"must start with one of {', '.join(SOURCE_KINDS)} (got {v!r})")
        if kind in ("folder", "video") and not arg:
            raise ValueError(f"'{kind}:' needs a path, e.g. '{kind}:/srv/frames'")
        return v

    @field_validator("k")
    @classmethod
    def _k(cls, v: int) -> int:
        if v < MIN_K:
            raise ValueError(f"must be an integer >= {MIN_K} (fewer visits would expose one person)")
        return v

    @field_validator("models_dir")
    @classmethod
    def _models_dir(cls, v: Path) -> Path:
        if not str(v) or str(v) == ".":
            raise ValueError("must be a path")
        return v

    @property
    def source_kind(self) -> str:
        return self.source.split(":", 1)[0]

    @property
    def source_arg(self) -> str:
        return self.source.split(":", 1)[1] if ":" in self.source else ""

    @classmethod
    def from_table(cls, table: dict[str, Any] | None) -> VisionConfig:
        """Build from a parsed TOML table; raises ConfigError (a ValueError) naming the bad key."""
        try:
            return cls.model_validate(dict(table or {}))
        except ValidationError as exc:
            raise from_validation(exc, "camera", cls) from None
