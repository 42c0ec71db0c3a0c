"""Mosquitto configuration generated from the CA: mutual-TLS listener, CRL and per-device ACL.

Each kiosk authenticates with its client certificate; ``use_identity_as_username`` makes the
certificate's CN (the device id) the MQTT username, and the ACL restricts every device to its own
topics with ``%u``. Never use ``%c`` (the client id, which a client chooses freely).

Two ACL modes:

* ``registry`` (default): one ``user`` block per active device in the registry, bound to its office
  too (a kiosk cannot publish under another office's code); regenerate and ``SIGHUP`` the broker
  after provisioning.
* ``pattern``: device rules are ``pattern`` lines keyed on ``%u``; a freshly provisioned kiosk works
  without touching the broker, but a kiosk may publish under any office's code in its topic.

Loss bounds (:class:`QueueSizing`, :func:`limits_conf`): the kiosk deletes an event once the broker
acknowledges it, so from then on the event lives only in the broker's queue for the gateway's
persistent session. Mosquitto's defaults (1000 queued messages per client, 20 in flight, no
persistence in a ``-c`` config) drop QoS 1 messages silently past 1000. The generated config sizes
the queue for the fleet and the longest gateway outage it must absorb, turns persistence on and
publishes ``$SYS`` statistics that the gateway watches (queue depth, drops). The tests' broker
(``tests/support/mosquitto.py``) uses the same :func:`limits_conf`.

``use_username_as_clientid`` forces the client id to the CN, so no kiosk can take over (and
disconnect) another's session by choosing its client id. Each gateway instance therefore needs its
own certificate (``motcua.gateway``, ``motcua.gateway2``, ... all passed as ``gateway_cns``).

If mosquitto is started as root it drops to the ``mosquitto`` user and then fails quietly on files
it cannot read, so the generated files are chowned to that user when we run as root, and
:func:`unreadable_by` reports path components that user cannot traverse.
"""

from __future__ import annotations

import grp
import math
import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

from contract.topics import TOPIC_PREFIX
from provisioning.ca import CA, GATEWAY_CN, _write

BROKER_CN = "mqtt.motcua"


# Measured on Mosquitto 2.0.11 (docs/provisioning.md): a queued 400-byte event costs ~700 bytes of
# broker heap (payload + ~300 bytes of bookkeeping) and ~500 bytes in mosquitto.db.
HEAP_PER_QUEUED_EVENT = 700
SESSION_EXPIRY_S = 30 * 86400  # persistent sessions (gateway and kiosks) kept this long while away


@dataclass(frozen=True)
class QueueSizing:
    """How many events the broker must hold for an absent or slow gateway.

    ``max_queued_messages = kiosks × events_per_kiosk_day × outage_days``; the defaults (2,000
    kiosks × 500 events a day × 1 day = 1,000,000) hold a day's outage of a fleet of 2,000 counters
    (a 38-office province of ~150 kiosks produced ~60,000 events a day: 16 days). ``max_queued_bytes``
    allows ``payload_budget`` bytes per event (events are ~330–370 bytes on the wire), so the message
    count is the limit that binds; both are stated because either one, reached, drops messages.
    """

    kiosks: int = 2000
    events_per_kiosk_day: int = 500
    outage_days: float = 1.0
    payload_budget: int = 1024
    inflight: int = 10_000  # per client: the gateway acks after commit; a small window stalls a backlog

    def __post_init__(self) -> None:
        for name in ("kiosks", "events_per_kiosk_day", "payload_budget", "inflight"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not (0 < self.outage_days <= 366):
            raise ValueError("outage_days must be in (0, 366]")

    @property
    def max_queued_messages(self) -> int:
        return math.ceil(self.kiosks * self.events_per_kiosk_day * self.outage_days)

    @property
    def max_queued_bytes(self) -> int:
        return self.max_queued_messages * self.payload_budget

    @property
    def heap_estimate_mb(self) -> float:
        return self.max_queued_messages * HEAP_PER_QUEUED_EVENT / 1e6


def limits_conf(sizing: QueueSizing, persistence_dir: str | Path, *, sys_interval_s: int = 10) -> str:
    """Queue, in-flight, persistence and ``$SYS`` lines (the same for production and tests)."""
    q = sizing
    return (
        "# Loss bounds (docs/provisioning.md, 'Broker queue and persistence'):\n"
        f"# max_queued_messages = {q.kiosks} kiosks x {q.events_per_kiosk_day} events/day x "
        f"{q.outage_days:g} day(s) of gateway outage = {q.max_queued_messages}\n"
        f"# a full queue holds ~{q.heap_estimate_mb:,.0f} MB of broker heap "
        f"({HEAP_PER_QUEUED_EVENT} B per queued event, measured); past it QoS 1 messages for the\n"
        "# absent client are DROPPED (log: 'Outgoing messages are being dropped', $SYS\n"
        "# .../publish/messages/dropped): the gateway alerts before (queue depth) and when it happens.\n"
        "# No memory_limit: at that limit Mosquitto 2.0.11 also disconnects the gateway that drains.\n"
        f"max_queued_messages {q.max_queued_messages}\n"
        f"max_queued_bytes {q.max_queued_bytes}\n"
        f"max_inflight_messages {q.inflight}\n"
        "queue_qos0_messages false\n"
        f"persistent_client_expiration {SESSION_EXPIRY_S // 86400}d\n"
        "# persistence: saved every autosave_interval s and at shutdown; a broker crash loses what\n"
        "# arrived since the last save (restart with SIGTERM, never SIGKILL)\n"
        "persistence true\n"
        f"persistence_location {str(persistence_dir).rstrip('/')}/\n"
        "autosave_interval 60\n"
        "autosave_on_changes false\n"
        f"sys_interval {sys_interval_s}\n"
    )


@dataclass
class BrokerFiles:
    conf: Path
    acl: Path
    cafile: Path
    certfile: Path
    keyfile: Path
    crlfile: Path
    listener_conf: str  # listener + TLS + auth lines, without persistence/logging
    limits_conf: str = ""  # queue, in-flight, persistence, $SYS (limits_conf())


def acl_text(ca: CA, mode: str = "registry", gateway_cns: tuple[str, ...] = (GATEWAY_CN,)) -> str:
    p = TOPIC_PREFIX
    lines = [
        "# Generated by motcua-provision mosquitto-conf. Do not edit: regenerate instead.",
        "# Usernames are certificate CNs (use_identity_as_username). Never use %c (client-chosen).",
        "",
    ]
    for cn in gateway_cns:
        lines += [f"user {cn}", f"topic read {p}/#", f"topic write {p}/+/+/cmd/+",
                  "topic read $SYS/broker/#", ""]
    if mode == "pattern":
        lines += [
            "# Every kiosk: publish only its own status/events/health, receive only its own commands.",
            f"pattern write {p}/+/%u/status",
            f"pattern write {p}/+/%u/events",
            f"pattern write {p}/+/%u/health",
            f"pattern read {p}/+/%u/cmd/+",
        ]
    elif mode == "registry":
        for device_id, d in sorted(ca.registry()["devices"].items()):
            if d["status"] != "active":
                continue
            base = f"{p}/{d['office']}/{device_id}"
            lines += [f"user {device_id}", f"topic write {base}/status", f"topic write {base}/events",
                      f"topic write {base}/health", f"topic read {base}/cmd/+", ""]
    else:
        raise ValueError(f"unknown ACL mode {mode!r} (pattern|registry)")
    return "\n".join(lines) + "\n"


def _owner() -> tuple[int, int] | None:
    """uid/gid of the mosquitto user when we run as root (mosquitto will drop to it)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("mosquitto").pw_uid, grp.getgrnam("mosquitto").gr_gid
    except KeyError:
        return None


def write_broker_config(ca: CA, out_dir: Path, *, port: int = 8883, bind: str = "0.0.0.0",
                        server_names: list[str] | None = None, acl_mode: str = "registry",
                        gateway_cns: tuple[str, ...] = (GATEWAY_CN,), sizing: QueueSizing | None = None,
                        persistence_dir: str | Path = "/var/lib/mosquitto") -> BrokerFiles:
    """Write ca.crt, server.crt/key (issued now if absent), crl.pem, acl and mosquitto.conf to out_dir.

    mosquitto.conf is a whole broker config (run ``mosquitto -c`` on it): Debian's default
    /etc/mosquitto/mosquitto.conf already sets persistence_location, and Mosquitto refuses a
    duplicate, so it cannot be an include of that file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o755)
    owner = _owner()
    files = BrokerFiles(conf=out / "mosquitto.conf", acl=out / "acl", cafile=out / "ca.crt",
                        certfile=out / "server.crt", keyfile=out / "server.key", crlfile=out / "crl.pem",
                        listener_conf="")
    if not files.keyfile.exists():
        key, cert = ca.issue_service(BROKER_CN, server_names or ["localhost", "127.0.0.1"])
        _write(files.keyfile, key, 0o600)
        _write(files.certfile, cert, 0o644)
    _write(files.cafile, ca.ca_pem(), 0o644)
    shutil.copyfile(ca.path / "crl.pem", files.crlfile)
    os.chmod(files.crlfile, 0o644)
    _write(files.acl, acl_text(ca, acl_mode, gateway_cns).encode(), 0o644)
    files.listener_conf = (
        "per_listener_settings false\n"
        "allow_anonymous false\n"
        f"acl_file {files.acl}\n"
        f"listener {port} {bind}\n"
        f"cafile {files.cafile}\n"
        f"certfile {files.certfile}\n"
        f"keyfile {files.keyfile}\n"
        f"crlfile {files.crlfile}\n"
        "require_certificate true\n"
        "use_identity_as_username true\n"
        "use_username_as_clientid true\n"
        "tls_version tlsv1.2\n"
    )
    files.limits_conf = limits_conf(sizing or QueueSizing(), persistence_dir)
    _write(files.conf, ("# Generated by motcua-provision mosquitto-conf (MotCua Edge).\n"
                        + files.listener_conf + files.limits_conf
                        + "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
                        + "log_type information\nlog_timestamp_format %Y-%m-%dT%H:%M:%S\n").encode(), 0o644)
    if owner:
        for path in (files.keyfile, files.certfile, files.cafile, files.crlfile, files.acl, files.conf):
            os.chown(path, *owner)
    return files


def unreadable_by(user: str, paths: list[Path]) -> list[str]:
    """Paths (or a parent directory) the given user could not read/traverse, as plain messages."""
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return []
    groups = {g.gr_gid for g in grp.getgrall() if user in g.gr_mem} | {pw.pw_gid}
    problems: list[str] = []

    def can(st: os.stat_result, bit: int) -> bool:
        if st.st_uid == pw.pw_uid:
            return bool(st.st_mode & (bit << 6))
        if st.st_gid in groups:
            return bool(st.st_mode & (bit << 3))
        return bool(st.st_mode & bit)

    for path in paths:
        path = Path(path).resolve()
        for parent in reversed(path.parents):
            if not can(parent.stat(), 1):
                problems.append(f"{user} cannot enter {parent}")
                break
        else:
            if not can(path.stat(), 4):
                problems.append(f"{user} cannot read {path}")
    return sorted(set(problems))
