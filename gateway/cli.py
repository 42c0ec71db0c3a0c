"""``motcua-gateway``: run the gateway, migrate the database, manage users."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from pathlib import Path
from typing import Any

from gateway.auth_config import ROLES
from gateway.config import ConfigError, Settings


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.load(args.config) if args.config else Settings.load(None)
    if getattr(args, "data_dir", None):
        settings.data_dir = Path(args.data_dir)
    if getattr(args, "broker", None) is not None:
        settings.broker.url = args.broker
    if getattr(args, "db", None):
        settings.database.url = args.db
    if getattr(args, "port", None):
        settings.web.port = args.port
    if getattr(args, "host", None):
        settings.web.host = args.host
    settings.validate()
    return settings


def _database_ready(settings: Settings) -> bool:
    """Migrate before serving, so an unreachable or broken database is one clear line, not a trace."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.store import Store

    shown = make_url(settings.database_url).render_as_string(hide_password=True)
    try:
        store = Store(settings.database_url)
        store.migrate()
        store.close()
    except (SQLAlchemyError, OSError) as exc:
        reason = getattr(exc, "orig", None) or exc
        print(f"database error: {shown}: {str(reason).strip().splitlines()[0]}", file=sys.stderr)
        return False
    return True


def cmd_run(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.app import create_app
    from gateway.gc_tuning import tune_gc

    settings = _settings(args)
    if not _database_ready(settings):
        return 3
    app = create_app(settings)
    tune_gc()  # after the imports and the app are built (gateway/gc_tuning.py)
    embedded = " embedded" if settings.broker.embedded else ""
    db = settings.database_url.split("@")[-1]  # no credentials on screen
    print(
        f"MotCua Edge gateway: http://{settings.web.host}:{settings.web.port}/map  "
        f"(API docs /docs; broker {settings.broker.effective_url()}{embedded}; database {db})",
        flush=True,
    )
    uvicorn.run(
        app, host=settings.web.host, port=settings.web.port, log_level=args.log_level.lower(),
        timeout_graceful_shutdown=3,  # open SSE streams must not hold Ctrl+C for minutes
        proxy_headers=False,  # X-Forwarded-For is read by gateway.auth, from [auth] trusted_proxies only
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from gateway.store import Store
    from gateway.store.migrations import current_version

    settings = _settings(args)
    store = Store(settings.database_url)
    applied = store.migrate()
    print(f"schema version {current_version(store.engine)}; applied {applied or 'nothing (up to date)'}")
    store.close()
    return 0


def cmd_device_bind(args: argparse.Namespace) -> int:
    """Bind a device to an office counter, as ``POST /api/v1/devices`` does (same checks, audited with
    the actor ``cli:<login name>``); ``--release-held`` also counts its held events under the rules."""
    from zoneinfo import ZoneInfo

    from gateway.registry import load_registry
    from gateway.store import Store
    from gateway.store.integrity import bind_device

    settings = _settings(args)
    if not _database_ready(settings):
        return 3
    store = Store(settings.database_url, integrity=settings.integrity)
    try:
        if settings.registry.load_on_start:  # the offices `run` would serve
            store.load_registry(load_registry(settings.registry_file))
        office = store.office(args.office)
        if office is None:
            print(f"error: office {args.office!r} is not in the registry", file=sys.stderr)
            return 1
        if not 1 <= args.counter <= office["counters"]:
            print(f"error: office {args.office} has counters 1..{office['counters']}", file=sys.stderr)
            return 1
        actor = f"cli:{getpass.getuser()}"
        released = bind_device(store, args.device, args.office, args.counter, actor, args.release_held,
                               ZoneInfo(settings.kpi.timezone))
    finally:
        store.close()
    print(f"device {args.device!r} bound to office {args.office} counter {args.counter} by {actor}")
    if args.release_held:
        print("held events: " + ", ".join(f"{k} {v}" for k, v in sorted(released.items())))
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    from gateway.auth import USERS_FILE, add_user

    settings = _settings(args)
    path = Path(settings.auth.get("users_file") or settings.data_dir / USERS_FILE)
    password = os.environ.get("MOTCUA_NEW_PASSWORD") or getpass.getpass(
        f"Mật khẩu / password for {args.username}: "
    )
    if len(password) < 8:
        print("error: password must be at least 8 characters", file=sys.stderr)
        return 2
    try:
        add_user(path, args.username, password, args.role, tuple(args.office))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"user {args.username!r} ({args.role}) saved in {path}")
    return 0


def cmd_user_remove(args: argparse.Namespace) -> int:
    from gateway.auth import USERS_FILE, remove_user

    settings = _settings(args)
    path = Path(settings.auth.get("users_file") or settings.data_dir / USERS_FILE)
    if not remove_user(path, args.username):
        print(f"error: no user {args.username!r} in {path} (users in the config file are edited there)",
              file=sys.stderr)
        return 1
    print(f"user {args.username!r} removed from {path}; their open sessions end at their next request")
    return 0


def cmd_user_hash(args: argparse.Namespace) -> int:
    from gateway.auth import hash_password

    password = os.environ.get("MOTCUA_NEW_PASSWORD") or getpass.getpass("Mật khẩu / password: ")
    print(hash_password(password))
    return 0


def cmd_token_new(args: argparse.Namespace) -> int:
    from gateway.auth import new_api_token

    token, digest = new_api_token()
    print(f"token (give to the client, shown once): {token}")
    print(f'[[auth.api_tokens]]\nname = "{args.name}"\nrole = "{args.role}"\ntoken_sha256 = "{digest}"')
    return 0


def cmd_feed(args: argparse.Namespace) -> int:
    """``feed status``: records produced, each push target's mark and backlog, hub counters;
    ``feed produce``: one producer pass now (the running gateway does it every [feed] interval_s)."""
    from gateway.feed.status import feed_report

    settings = _settings(args)
    if not _database_ready(settings):
        return 3
    if args.fcmd == "produce" and not settings.feed.enabled:
        print("error: [feed] enabled = false in this configuration", file=sys.stderr)
        return 1
    print(feed_report(settings, produce=args.fcmd == "produce"))
    return 0


def _device_id(value: str) -> str:
    """The contract's device id rule (lower-case letters, digits, - and _; 2-48 characters)."""
    from contract.topics import DEVICE_ID_RE

    if DEVICE_ID_RE.match(value) is None:
        raise argparse.ArgumentTypeError(f"{value!r}: lower-case letters, digits, '-', '_'; 2-48 characters")
    return value


def _common(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--config", help="TOML file (see gateway/gateway.example.toml); default: built-in defaults"
    )
    sp.add_argument("--data-dir", help="overrides data_dir")
    sp.add_argument("--db", help="overrides [database] url (or MOTCUA_DB_URL)")


def _add_run_migrate_device(sub: Any) -> None:
    r = sub.add_parser("run", help="run web + API + ingest")
    _common(r)
    r.add_argument("--broker", help="overrides [broker] url; '' = embedded broker")
    r.add_argument("--port", type=int)
    r.add_argument("--host")
    r.set_defaults(fn=cmd_run)
    mg = sub.add_parser("migrate", help="create/upgrade the database schema")
    _common(mg)
    mg.set_defaults(fn=cmd_migrate)
    dv = sub.add_parser("device", help="manage the device registry")
    dsub = dv.add_subparsers(dest="dcmd", required=True)
    db = dsub.add_parser("bind", help="bind a device to an office counter (audited; see docs/gateway.md)")
    _common(db)
    db.add_argument("--device", required=True, type=_device_id, help="device id, e.g. k03390-q1")
    db.add_argument("--office", required=True, help="office code in the registry")
    db.add_argument("--counter", required=True, type=int, help="counter number (1..the office's counters)")
    db.add_argument("--release-held", action="store_true",
                    help="also count the events it sent while unregistered (same rules as live events)")
    db.set_defaults(fn=cmd_device_bind)


def _add_user_feed_token(sub: Any) -> None:
    u = sub.add_parser("user", help="manage operator/admin users")
    usub = u.add_subparsers(dest="ucmd", required=True)
    ua = usub.add_parser("add", help="add or replace a user (password from MOTCUA_NEW_PASSWORD or a prompt)")
    _common(ua)
    ua.add_argument("username")
    ua.add_argument("--role", default="operator", choices=list(ROLES))
    ua.add_argument("--office", action="append", default=[],
                    help="office code an office_head reads reports of (repeat for several)")
    ua.set_defaults(fn=cmd_user_add)
    ur = usub.add_parser("remove", help="remove a user from the users file")
    _common(ur)
    ur.add_argument("username")
    ur.set_defaults(fn=cmd_user_remove)
    uh = usub.add_parser("hash", help="print an argon2 hash for [[auth.users]] password_hash")
    uh.set_defaults(fn=cmd_user_hash)
    fd = sub.add_parser("feed", help="upward feed / province hub (docs/gateway.md)")
    fsub = fd.add_subparsers(dest="fcmd", required=True)
    for name, text in (("status", "records, push marks and backlogs, hub counters"),
                       ("produce", "compute closed hours now and write new revisions")):
        fp = fsub.add_parser(name, help=text)
        _common(fp)
        fp.set_defaults(fn=cmd_feed)
    tk = sub.add_parser("token", help="API tokens")
    tsub = tk.add_subparsers(dest="tcmd", required=True)
    tn = tsub.add_parser("new", help="create a bearer token; prints the [[auth.api_tokens]] entry")
    tn.add_argument("--name", required=True)
    tn.add_argument("--role", default="admin", choices=[r for r in ROLES if r != "office_head"])
    tn.set_defaults(fn=cmd_token_new)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="motcua-gateway", description="MotCua Edge gateway")
    p.add_argument("--log-level", default="INFO")
    sub = p.add_subparsers(dest="cmd", required=True)
    _add_run_migrate_device(sub)
    _add_user_feed_token(sub)
    args = p.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.fn(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)  # "config error: [section] key: problem"
        return 2

if __name__ == "__main__":
    sys.exit(main())
