"""The session-signing secret of the gateway's web UI: from ``[auth] secret_key``, else the
environment (``MOTCUA_SECRET_KEY``), else ``<data_dir>/secret_key`` (created 0600 on first use), else an
ephemeral key with a warning (sessions then end at restart). A key shorter than ``MIN_SECRET_LEN``
is refused, wherever it came from."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.auth_config import MIN_SECRET_LEN

log = logging.getLogger("gateway.auth")

SECRET_ENV = "MOTCUA_SECRET_KEY"
SECRET_FILE = "secret_key"


def resolve_secret(value: Any, data_dir: Path | str | None, env: Mapping[str, str]) -> tuple[str, str]:
    """(key, source) with source "config", "env", "file" or "ephemeral"."""
    if value is not None:  # (length checked by AuthTable)
        return value, "config"
    from_env = env.get(SECRET_ENV)
    if from_env:
        if len(from_env) < MIN_SECRET_LEN:
            raise ValueError(f"{SECRET_ENV} must be at least {MIN_SECRET_LEN} characters")
        return from_env, "env"
    if data_dir is not None:
        path = Path(data_dir) / SECRET_FILE
        if path.exists():
            text = path.read_text().strip()
            if len(text) < MIN_SECRET_LEN:
                raise ValueError(f"auth.secret_key: {path} holds a key shorter than {MIN_SECRET_LEN}")
            return text, "file"
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        log.info("generated a session secret key in %s", path)
        return key, "file"
    log.warning("no auth.secret_key, %s or data dir: using an ephemeral key (sessions end at restart)",
                SECRET_ENV)
    return secrets.token_urlsafe(48), "ephemeral"
