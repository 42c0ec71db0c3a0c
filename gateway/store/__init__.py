"""Storage: SQLAlchemy Core on SQLite (default, WAL) or PostgreSQL (by URL)."""

from gateway.store.db import Store

__all__ = ["Store"]
