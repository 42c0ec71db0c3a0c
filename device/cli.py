"""``motcua-kiosk``: run the counter kiosk, check its config, run the self-test.

motcua-kiosk run --config kiosk.toml [--simulate] [--broker URL] [--data-dir DIR] [--http-port N]
motcua-kiosk check-config --config kiosk.toml
motcua-kiosk selftest --config kiosk.toml [--simulate] [--auto] [--broker URL] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from device.config import ConfigError, KioskConfig, load_config, with_overrides
from device.hardware import HardwareError

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
    p = sub.add_parser("selftest", help="test each component, print a pass/fail report, send it")
    common(p)
    p.add_argument("--auto", action="store_true", help="press the (mock) buttons automatically")
    return ap.parse_args(argv)


def _load(a: argparse.Namespace) -> KioskConfig:
    cfg = load_config(a.config)
    return with_overrides(
        cfg, getattr(a, "broker", None), getattr(a, "http_port", None), getattr(a, "http_host", None)
    )


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


def cmd_run(a: argparse.Namespace) -> int:
    from device.app import Kiosk

    cfg = _load(a)
    kiosk = Kiosk(cfg, a.data_dir, a.simulate)
    kiosk.start()
    server = _serve(kiosk, cfg)
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
    try:
        server.run()  # returns after SIGTERM/SIGINT; then the retained offline status is published
    finally:
        kiosk.shutdown()
    return 0


def cmd_check(a: argparse.Namespace) -> int:
    cfg = load_config(a.config)
    print(f"config OK: {a.config}")
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
    return 0


def cmd_selftest(a: argparse.Namespace) -> int:
    from device.app import Kiosk
    from device.selftest import format_report, run_selftest

    if a.auto and not a.simulate:
        print("--auto needs --simulate (real buttons must be pressed by hand)", file=sys.stderr)
        return 2
    cfg = _load(a)
    kiosk = Kiosk(cfg, a.data_dir, a.simulate)
    kiosk.start()
    server = _serve(kiosk, cfg)
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        report = run_selftest(kiosk, auto=a.auto)
        print(format_report(report))
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
