"""``motcua-kiosk``: run the counter kiosk, check its config, run the self-test.

motcua-kiosk run --config kiosk.toml [--simulate] [--broker URL] [--data-dir DIR] [--http-port N]
motcua-kiosk check-config --config kiosk.toml [--release DIR]
motcua-kiosk selftest --config kiosk.toml [--simulate] [--auto] [--broker URL] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from device.config import ConfigError, KioskConfig, load_config, with_overrides
from device.config_line import line_of
from device.hardware import HardwareError
from device.updates import recover_interrupted, release_dir
from device.updates.slots import exec_release_code

DEFAULT_CONFIG = Path(__file__).resolve().parent / "kiosk.example.toml"


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="motcua-kiosk", description="MotCua Edge counter kiosk")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="kiosk TOML config")
        p.add_argument("--simulate", action="store_true", help="mock GPIO pins, file printer/audio sinks")
        p.add_argument("--broker", help="override [broker] url, e.g. mqtt://127.0.0.1:1883")
        p.add_argument("--data-dir", type=Path, default=Path("data/kiosk"), help="database, prints, audio")
        p.add_argument("--http-port", type=int, help="override [display] http_port")
        p.add_argument("--http-host", help="override [display] http_host")
        p.add_argument("-v", "--verbose", action="store_true")

    common(sub.add_parser("run", help="run the kiosk"))
    p = sub.add_parser("check-config", help="validate a config file and print a summary")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument("--release", type=Path, help="an update release folder whose overlay and models to check")
    p = sub.add_parser("selftest", help="test each component, print a pass/fail report, send it")
    common(p)
    p.add_argument("--auto", action="store_true", help="press the (mock) buttons automatically")
    return ap.parse_args(argv)


def _load(a: argparse.Namespace) -> tuple[KioskConfig, dict | None, str | None]:
    """The effective config: --config plus the active update release (data_dir/current), if any.

    First an update left on probation by a crash is rolled back (its ``update.result`` is returned
    for publishing). If the release's overlay no longer validates against the local config, the
    kiosk starts on the local config alone and says why (never unbootable because of an update)."""
    recovered, problem, release = None, None, None
    data_dir = getattr(a, "data_dir", None)
    if data_dir is not None:
        try:
            recovered = recover_interrupted(data_dir)
        except Exception as exc:  # never unbootable because of update bookkeeping
            problem = f"update recovery failed: {exc}"[:200]
            print(problem, file=sys.stderr)
        exec_release_code(data_dir, recovered)  # the active release's own kiosk code, if it has some
        release = release_dir(data_dir)
    cfg = load_config(a.config)  # the local file alone must always be valid
    if release is not None:
        try:
            cfg = load_config(a.config, release)
        except ConfigError as exc:
            problem = f"update release {release.name} ignored: {exc}"[:200]
            print(problem, file=sys.stderr)
    cfg = with_overrides(
        cfg, getattr(a, "broker", None), getattr(a, "http_port", None), getattr(a, "http_host", None)
    )
    return cfg, recovered, problem


def _kiosk(a: argparse.Namespace):
    from device.app import Kiosk

    cfg, recovered, problem = _load(a)
    kiosk = Kiosk(cfg, a.data_dir, a.simulate)
    kiosk.updates.recovered = recovered
    if problem:
        kiosk.last_error = problem
    return kiosk


def _serve(kiosk, cfg: KioskConfig, stop: threading.Event | None = None):
    import uvicorn

    from device.web.app import create_app

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(kiosk),
            host=cfg.display.http_host,
            port=cfg.display.http_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    return server


def _serve_line(kiosk) -> Any:
    """The entrance kiosk's LAN listener (device/web/line_api.py), in a thread; None on other kiosks."""
    if kiosk.line_owner is None:
        return None
    import uvicorn

    from device.web.line_api import create_line_app

    line = line_of(kiosk.cfg)
    config = uvicorn.Config(create_line_app(kiosk), host=line.listen_host, port=line.listen_port,
                            log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, name="line-api", daemon=True).start()
    return server


def cmd_run(a: argparse.Namespace) -> int:
    kiosk = _kiosk(a)
    cfg = kiosk.cfg
    restart = threading.Event()
    server = _serve(kiosk, cfg)

    def _restart() -> None:  # an applied update changed sections read only at start, or was rolled back
        restart.set()
        server.should_exit = True

    kiosk.restart_hook = _restart
    kiosk.start()
    line_server = _serve_line(kiosk)
    print(
        f"kiosk {cfg.device.id} ({cfg.device.office_code}, quầy {cfg.device.counter}) display on "
        f"http://{cfg.display.http_host}:{cfg.display.http_port}/ broker {cfg.broker.url}"
        f"{' [simulated hardware]' if a.simulate else ''}",
        flush=True,
    )

    def _stop(signum: int, frame: object) -> None:
        server.should_exit = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    from device.systemd import for_server

    notifier = for_server(server, cfg.display.http_host, f"kiosk {cfg.device.id} serving")
    notifier.start()  # READY=1 once serving, WATCHDOG=1 while /api/status answers (no-op outside systemd)
    try:
        server.run()  # returns after SIGTERM/SIGINT; then the retained offline status is published
    finally:
        notifier.stop(restarting=restart.is_set())
        if line_server is not None:
            line_server.should_exit = True
        kiosk.shutdown()
    if restart.is_set():
        print("restarting the kiosk (an update to apply, or its database to check)", flush=True)
        os.execv(sys.executable, [sys.executable, "-m", "device.cli", *sys.argv[1:]])
    return 0


def cmd_check(a: argparse.Namespace) -> int:
    if a.release is not None and not a.release.is_dir():
        raise ConfigError("file", str(a.release), "update release folder not found")
    cfg = load_config(a.config, a.release)
    print(f"config OK: {a.config}" + (f" + update release {a.release}" if a.release else ""))
    print(
        f"  device {cfg.device.id} office {cfg.device.office_code} counter {cfg.device.counter} "
        f"tz {cfg.device.timezone}"
    )
    print(f"  broker {cfg.broker.url}  rating scale {cfg.rating.scale}: {' / '.join(cfg.rating.labels)}")
    print(f"  buttons {json.dumps(cfg.buttons.pins)} debounce {cfg.buttons.debounce_ms} ms")
    print(
        f"  printer {cfg.printer.kind}  audio {cfg.audio.mode} vol {cfg.audio.volume}  "
        f"display :{cfg.display.http_port}  outbox quota {cfg.outbox.quota_mb} MB  "
        f"camera {'on' if cfg.camera_enabled else 'off'}"
    )
    if cfg.vision is not None:
        print(f"  models {cfg.vision.models_dir}")
    return 0


def cmd_selftest(a: argparse.Namespace) -> int:
    from device.selftest import format_report, run_selftest

    if a.auto and not a.simulate:
        print("--auto needs --simulate (real buttons must be pressed by hand)", file=sys.stderr)
        return 2
    kiosk = _kiosk(a)
    cfg = kiosk.cfg
    kiosk.start()
    server = _serve(kiosk, cfg)
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        report = run_selftest(kiosk, auto=a.auto, say=lambda line: print(line, flush=True))
        print("— Kết quả / summary —\n" + format_report(report), flush=True)
        if not kiosk.publisher.wait_drained(10):
            print("warning: report not yet delivered to the broker (kept in the outbox)")
    finally:
        server.should_exit = True
        t.join(5)
        kiosk.shutdown()
    return 0 if report["passed"] else 1


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(a, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if a.cmd == "selftest":
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return {"run": cmd_run, "check-config": cmd_check, "selftest": cmd_selftest}[a.cmd](a)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except HardwareError as exc:
        print(f"hardware error: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
