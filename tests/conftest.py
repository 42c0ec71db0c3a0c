"""Fixtures shared by the whole suite, and its two tiers. Sub-folders add their own conftest.py.

Tiers: ``make test`` (CI) runs everything; ``make test-fast`` (``pytest -m "not slow"``) leaves out
the tests marked ``slow``, for a developer's loop of under two minutes. A test is slow when it is
marked ``@pytest.mark.slow`` itself, when its module or its name is in ``SLOW`` below (with the
reason, so the marks live in one reviewed place; figures measured on the shared 2-core machine), or
when it uses a fixture of ``SLOW_FIXTURES`` (a real browser or PostgreSQL: seconds to start,
whoever writes the test). A fast-tier run names, at its end, any unmarked test that took longer
than ``FAST_BUDGET_S``, so the tier stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.harness.mosquitto import Mosquitto, free_port, running_mosquitto

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
ARTIFACTS = Path(os.environ.get("MOTCUA_TEST_ARTIFACTS", REPO / "build" / "test-artifacts"))

FAST_BUDGET_S = 5.0
SLOW_FIXTURES = frozenset({"browser", "page_factory", "postgres"})
SLOW = {  # "path" or "path::test function" -> why the fast tier leaves it out
    "tests/device/test_kill9.py": "kill -9 loops on a kiosk process",
    "tests/device/test_display_browser.py": "a kiosk process and Chromium",
    "tests/device/test_hil.py": "the HIL scenario on simulated hardware, kiosk processes",
    "tests/device/test_kiosk_e2e.py": "kiosk processes through broker outages, power cuts, commands",
    "tests/device/test_rating_attacks.py": "kiosk processes under press bursts",
    "tests/device/test_store_recovery.py::test_kiosk_process_on_a_damaged_database": "a kiosk process "
    "per kind of damage (30-40 s each)",
    "tests/device/test_store_recovery.py::test_random_corruption_is_caught_or_harmless": "many damaged "
    "copies of a database",
    "tests/device/test_clock_cli.py::test_selftest_cli_reports_each_component": "the self-test CLI",
    "tests/device/test_clock_cli.py::test_citizens_driver_produces_visits": "simulated citizens at a kiosk",
    "tests/device/test_command_auth.py::test_outsider_reset_day_refused_gateway_one_works": "a kiosk "
    "process and a gateway",
    "tests/vision/test_kiosk_integration.py": "a kiosk process with the vision pipeline on frames",
    "tests/contract/test_fuzz_decoder.py": "a fuzz run over the decoder and the store",
    "tests/gateway/test_cli.py": "motcua-gateway in subprocesses (migrate, run, user add with argon2)",
    "tests/gateway/test_embedded_broker_limits.py": "a backlog through the embedded broker",
    "tests/gateway/test_ingest_poison.py::test_two_percent_poison_end_to_end": "a poisoned stream end to end",
    "tests/gateway/web/test_web_login_limit.py": "argon2 logins under guessing, per client and user",
    "tests/gateway/web/test_web_auth.py::test_rate_limit_holds_for_guesses_sent_at_once": "argon2 logins",
    "tests/gateway/web/test_web_auth.py::test_failure_tracking_stays_bounded": "many failed logins",
    "tests/gateway/web/test_web_http.py::test_login_rate_limit_csrf_and_logout": "argon2 logins over HTTP",
    "tests/provisioning/test_flash.py": "OS images built, written and read back",
    "tests/provisioning/test_updates_release.py::test_health_check_with_relative_paths": "release checks "
    "in child processes",
    "tests/provisioning/test_updates_release.py::test_models_checked_in_child_process_then_used_by_vision":
    "model checks in child processes, then the vision pipeline",
    "tests/e2e/test_demo.py": "the whole demo (broker, gateway, six kiosks) in Chromium",
    "tests/gateway/test_broker_loss_e2e.py": "broker restarts under load with TLS identities",
    "tests/gateway/test_load_short.py": "a load run",
    "tests/gateway/test_shared_subscription.py": "several gateway processes on PostgreSQL",
    "tests/provisioning/test_broker_identity.py": "TLS identities, revocation and CRL reloads (~40 s)",
    "tests/provisioning/test_updates_kiosk_e2e.py": "signed updates through a gateway to a kiosk process",
    "tests/provisioning/test_full_stack.py": "provisioned kiosk process, TLS broker, gateway, update",
    "tests/provisioning/test_kiosk_identity_e2e.py": "kiosk process with a TLS identity, revocation",
    "tests/vision/test_privacy.py": "a vision run watched for files and sockets",
    "tests/vpi/test_code_update.py": "kiosk wheels built and installed into release venvs (~70 s)",
    "tests/vpi/test_systemd_notify.py": "the kiosk under a watchdog, killed and restarted",
    "tests/vpi/test_selftest.py": "kiosk self-test processes with their prompts",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        rel = Path(str(item.path)).resolve().relative_to(REPO).as_posix()
        name = f"{rel}::{getattr(item, 'originalname', item.name)}"
        if rel in SLOW or name in SLOW or SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Unmarked tests over the fast tier's budget (call time), to mark slow or make faster."""
    over = []
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        if report.when == "call" and report.duration > FAST_BUDGET_S and "slow" not in report.keywords:
            over.append(f"{report.duration:6.1f} s  {report.nodeid}")
    if over:
        terminalreporter.write_sep("-", f"not marked slow but over {FAST_BUDGET_S:g} s (mark or speed up)")
        for line in sorted(over, reverse=True):
            terminalreporter.write_line(line)


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    """A real Mosquitto on a free loopback port, stopped after the test.

    Its work dir is a fresh folder under /tmp, not ``tmp_path``: started as root, Mosquitto drops to
    user ``mosquitto``, which cannot enter pytest's 0700 base folder, and would then run without its
    persistence file and log.
    """
    with running_mosquitto() as broker:
        yield broker


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project; skips with a reason in a user's clone."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs {SHARED_DATA} (the developers' shared data folder), absent in this clone")
    return SHARED_DATA


@pytest.fixture
def iotcore_port() -> Iterator[int]:
    """The demo's embedded broker (iotcore) on a free loopback port; yields the port."""
    from iotcore import Broker

    port = free_port()
    broker = Broker(port=port, listen="127.0.0.1").start()
    try:
        yield port
    finally:
        broker.stop()
