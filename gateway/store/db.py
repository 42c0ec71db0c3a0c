"""Engine set-up, dialect-neutral upserts, and the registry/commands/fleet reads and writes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from gateway.config import IntegritySettings
from gateway.store import schema as s
from gateway.store.migrations import migrate


class Store:
    """One per process; thread-safe (a connection pool). ``url`` is a SQLAlchemy URL."""

    def __init__(self, url: str, *, echo: bool = False, integrity: IntegritySettings | None = None) -> None:
        self.url = url
        self.integrity = integrity or IntegritySettings()  # docs/gateway.md#integrity
        u = make_url(url)
        if u.get_backend_name() == "sqlite":
            if u.database and u.database != ":memory:":
                Path(u.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = _sqlite_engine(url, echo, 8, 8, _sqlite_pragmas)
            # The ingest writer's own connection, kept across batches with a large page cache: the
            # events table's unique index on random UUIDs is written at random places, and with
            # SQLite's default 2 MiB cache (or another pooled connection each batch, whose cache a
            # write elsewhere has invalidated) every batch re-read those pages from the OS.
            self.writer_engine: Engine = _sqlite_engine(url, echo, 1, 2, _sqlite_writer_pragmas)
        elif u.get_backend_name() == "postgresql":
            # synchronous_commit on for our sessions whatever the server's default: an event is
            # acknowledged to the broker after its commit, so the commit must be on disk by then.
            self.engine = create_engine(
                url,
                echo=echo,
                pool_size=8,
                max_overflow=8,
                pool_pre_ping=True,
                connect_args={"options": f"{u.query.get('options', '')} -c synchronous_commit=on".strip()},
            )
            self.writer_engine = self.engine
        else:
            raise ValueError(f"unsupported database {u.get_backend_name()!r}: use sqlite or postgresql")
        self.dialect = self.engine.dialect.name

    def migrate(self) -> list[int]:
        applied = migrate(self.engine)
        from gateway.booking.store import create_tables as booking_tables
        from gateway.ticket_kinds import create_tables as kind_tables

        kind_tables(self.engine)  # their own tables (not steps of the shared migration list)
        booking_tables(self.engine)
        return applied

    def close(self) -> None:
        self.engine.dispose()
        if self.writer_engine is not self.engine:
            self.writer_engine.dispose()

    def insert(self, table: Table) -> Any:
        """Dialect-specific INSERT supporting ``on_conflict_do_nothing``/``_do_update``."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    # ------------------------------------------------------------------ registry

    def load_registry(self, reg: dict[str, Any]) -> dict[str, int]:
        """Upsert units, mappings, offices, counters and devices from a registry document."""
        now = time.time()
        n = {"units": 0, "unit_mapping": 0, "offices": 0, "devices": 0}
        prov_code = str(reg.get("province_code", ""))
        prov_name = str(reg.get("province_name", ""))
        with self.engine.begin() as conn:
            for u in reg.get("units", []):
                row = {
                    "code": u["code"],
                    "name": u["name"],
                    "kind": u.get("kind", "commune"),
                    "province_code": str(u.get("province_code", prov_code)),
                    "province_name": u.get("province_name", prov_name),
                }
                stmt = self.insert(s.units).values(row)
                conn.execute(stmt.on_conflict_do_update(index_elements=["code"], set_=row))
                n["units"] += 1
            for m in reg.get("unit_mapping", []):
                row = {"old_code": m.get("old_code"), "old_name": m["old_name"], "new_code": m["new_code"]}
                stmt = self.insert(s.unit_mapping).values(row)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["old_name", "new_code"], set_={"old_code": row["old_code"]}
                    )
                )
                n["unit_mapping"] += 1
            for o in reg.get("offices", []):
                self._upsert_office(conn, o)
                n["offices"] += 1
            for d in reg.get("devices", []):
                self.upsert_device(conn, d["device_id"], d["office_code"], d.get("counter"), now)
                n["devices"] += 1
        return n

    def _upsert_office(self, conn: Any, o: dict[str, Any]) -> None:
        row = {
            "code": o["code"],
            "name": o["name"],
            "unit_code": o["unit_code"],
            "lat": float(o["lat"]),
            "lon": float(o["lon"]),
            "counters": int(o.get("counters", 1)),
        }
        stmt = self.insert(s.offices).values(row)
        conn.execute(stmt.on_conflict_do_update(index_elements=["code"], set_=row))
        for c in range(1, row["counters"] + 1):
            conn.execute(
                self.insert(s.counters)
                .values(office_code=row["code"], counter=c, name=f"Quầy {c}")
                .on_conflict_do_nothing()
            )

    def upsert_device(
        self, conn: Any, device_id: str, office_code: str, counter: int | None, now: float
    ) -> None:
        row = {
            "device_id": device_id,
            "office_code": office_code,
            "counter": counter,
            "registered": True,
            "created_at": now,
        }
        stmt = self.insert(s.devices).values(row)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["device_id"],
                set_={"office_code": office_code, "counter": counter, "registered": True},
            )
        )

    def upsert_office(self, o: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            self._upsert_office(conn, o)

    def units(self) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            return {r.code: dict(r._mapping) for r in conn.execute(select(s.units))}

    def unit_mapping(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [
                dict(r._mapping) for r in conn.execute(select(s.unit_mapping).order_by(s.unit_mapping.c.id))
            ]

    def offices(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.offices).order_by(s.offices.c.code)).all()
            return [dict(r._mapping) for r in rows]

    def office(self, code: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(s.offices).where(s.offices.c.code == code)).first()
            return dict(r._mapping) if r else None

    def devices(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(s.devices).order_by(s.devices.c.device_id))]

    def device(self, device_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(s.devices).where(s.devices.c.device_id == device_id)).first()
            return dict(r._mapping) if r else None

    # ------------------------------------------------------------------ fleet

    def fleet_rows(self) -> list[dict[str, Any]]:
        """Every known device (registered or seen) with status and latest health, if any."""
        d, st, h = s.devices, s.device_status, s.health_latest
        q = (
            select(
                d.c.device_id,
                d.c.office_code,
                d.c.counter,
                d.c.registered,
                st.c.state,
                st.c.since,
                st.c.reason,
                st.c.last_seen,
                st.c.sw_version.label("status_sw"),
                st.c.last_selftest,
                st.c.last_started,
                h.c.received_at.label("health_at"),
                h.c.cpu_temp_c,
                h.c.outbox_depth,
                h.c.clock_synced,
                h.c.sw_version.label("health_sw"),
                h.c.last_error,
                h.c.data.label("health"),
            )
            .select_from(
                d.outerjoin(st, st.c.device_id == d.c.device_id).outerjoin(h, h.c.device_id == d.c.device_id)
            )
            .order_by(d.c.office_code, d.c.counter, d.c.device_id)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def sweep_offline(self, now: float, offline_after_s: float) -> list[dict[str, Any]]:
        """Mark devices with no status/health for ``offline_after_s`` offline; returns those changed."""
        st = s.device_status
        cond = (st.c.state == "online") & (st.c.last_seen < now - offline_after_s)
        with self.engine.begin() as conn:
            rows = conn.execute(select(st.c.device_id, st.c.office_code, st.c.last_seen).where(cond)).all()
            if not rows:
                return []
            ids = [r.device_id for r in rows]
            conn.execute(
                update(st)
                .where(cond & st.c.device_id.in_(ids))
                .values(state="offline", reason="no_health", since=now)
            )
        return [dict(r._mapping) for r in rows]

    # ------------------------------------------------------------------ commands

    def add_command(self, row: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(s.commands.insert().values(row))

    def set_command_status(self, cmd_id: str, status: str, result: Any = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(s.commands)
                .where(s.commands.c.cmd_id == cmd_id)
                .values(status=status, result=result, result_at=time.time())
            )

    def command(self, cmd_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(s.commands).where(s.commands.c.cmd_id == cmd_id)).first()
            return dict(r._mapping) if r else None

    # ------------------------------------------------------------------ counters

    def counters(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {r.name: int(r.count) for r in conn.execute(select(s.ingest_counters))}

    def add_counters(self, conn: Any, deltas: dict[str, int]) -> None:
        rows = [{"name": k, "count": v} for k, v in sorted(deltas.items()) if v]
        if not rows:
            return
        stmt = self.insert(s.ingest_counters)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"], set_={"count": s.ingest_counters.c.count + stmt.excluded.count}
        )
        conn.execute(stmt, rows)

    def event_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(s.events)).scalar_one())


def _sqlite_engine(url: str, echo: bool, pool_size: int, max_overflow: int, on_connect: Any) -> Engine:
    """An engine on the SQLite file whose every new connection first runs ``on_connect`` (pragmas)."""
    engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30},
                           pool_size=pool_size, max_overflow=max_overflow)
    event.listen(engine, "connect", on_connect)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")  # a commit (then the MQTT ack) survives power loss
    cur.execute("PRAGMA foreign_keys=OFF")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


WRITER_CACHE_KIB = 65536  # the writer connection's page cache (allocated as pages are read)
WRITER_CHECKPOINT_PAGES = 4000  # WAL pages (4 KiB) before the writer's commit copies them back


def _sqlite_writer_pragmas(dbapi_conn: Any, record: Any) -> None:
    """The writer's connection: the same durability (WAL, ``synchronous=FULL``: every commit's WAL
    frames are fsynced before the MQTT ack), a larger cache, and checkpoints every ~16 MiB of WAL
    instead of SQLite's 4 MiB. A batch of 2,000 events dirties most pages of the random-UUID index;
    a checkpoint writes each page once however many commits changed it, so fewer checkpoints write
    fewer pages. The WAL is cut back to 64 MiB after a checkpoint (``journal_size_limit``)."""
    _sqlite_pragmas(dbapi_conn, record)
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
    cur.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
    cur.execute(f"PRAGMA journal_size_limit={64 * 1024 * 1024}")
    cur.close()
