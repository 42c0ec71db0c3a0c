"""``make demo``: the whole system on embedded defaults, on this machine.

Starts an embedded MQTT broker (iotcore, from PyPI), the gateway on SQLite, N simulated kiosks
(default 6, across 2 offices of Lai Châu) on gpiozero's mock pins, and simulated citizens who take
tickets and rate the service through each kiosk's simulation API. Prints what it starts and the
events it sees; Ctrl+C stops everything.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import tomli_w

from contract import decode
from contract.topics import SUBSCRIBE_ALL
from device.line_tokens import counter_token

REPO = Path(__file__).resolve().parents[1]
KIOSK_EXAMPLE = REPO / "device" / "kiosk.example.toml"
GATEWAY_EXAMPLE = REPO / "gateway" / "gateway.example.toml"
DEMO_OFFICES = ["03390", "03405"]  # Bình Lư, Tả Lèng (Lai Châu, post-2025 units)
DEMO_ADMIN_PASSWORD = "demo-admin"
# report readers (docs/web.md): an office head bound to Bình Lư, and the province. Their argon2 hashes
# of the printed demo passwords go in the gateway config as they are (hashing at each start costs
# seconds on a small machine): (user, password, role, offices, hash of the password)
DEMO_REPORT_USERS = (
    ("truong-binh-lu", "demo-truong", "office_head", ("03390",),
     "$argon2id$v=19$m=65536,t=3,p=4$j/rqgixSw5eC5A0RceaBrw$gBfHtXJHlkZOFYb++i3ABuZTqi+IlaXy0r4genGHhNU"),
    ("so-noi-vu", "demo-tinh", "province", (),
     "$argon2id$v=19$m=65536,t=3,p=4$YAX4u9kkEGNTro/eB0fZRQ$pYe/zdun2mX9XycbQt8bPfjRD1Gh09keYdN8EPGmKJg"),
)
BOOKING_OFFICE = "03390"  # takes appointments in the demo (gateway.example.toml [booking])
# Shared lines (docs/kiosk.md#one-queue-per-service-field-across-counters): Bình Lư's citizens take a
# ticket per service field at an entrance kiosk, which owns the lines; its counters call from them.
SHARED_LINE_OFFICE = "03390"
ENTRANCE_COUNTER = 4  # the lines' number at the gateway (every event of a shared-line visit carries it)
COUNTER_FIELDS = {1: ["land"], 2: ["land", "civil"], 3: ["civil", "insurance"]}  # others: every field
DEMO_LINE_TOKEN = "demo-line-token-local-only"  # the office LAN's shared secret (demo only)
# Priority tickets only where the counters keep up: at an overloaded office "priority_first" serves
# every priority ticket at once and starves the walk-ins, and a wait averaged over *called* tickets
# then falls (docs/kiosk.md#ticket-kinds-and-calling-policy): Tả Lèng would never turn red.
PRIORITY_SHARE = {"03390": 0.15, "03405": 0.0}
# Real-time pace: arrivals per minute per counter, service seconds (min, max). Bình Lư keeps up (its
# counters are busy under half the time); Tả Lèng gets about twice what its counters can serve, so its
# queues and waits grow from the start. Measured with --time-scale 20: Tả Lèng amber after 3-4 min
# and red after 4-6 min; Bình Lư's average wait stays under ~15 s (green).
CITIZEN_PACE = {"03390": (1.0, (15, 40)), "03405": (4.0, (30, 80))}
DEFAULT_TIME_SCALE = 20.0
# The demo kiosks' camera: a looped clip of generated faces (demo/camera_clip.py), sampled during each
# visit. k = 3 is the kiosk's privacy floor (production default 5) and the gateway's min_k follows it,
# so that each office's sentiment tile fills after three visits at one of its counters instead of five.
CAMERA_CLIP = REPO / "demo" / "camera"
DEMO_K = 3
DEMO_WINDOW_S = 30
ARCHIVE_LATEST_S = 90.0  # the older history starts once the kiosks are online, or after this at the latest

# The demo's broker is anonymous and unencrypted: any process on this machine can publish as any
# kiosk. It listens on 127.0.0.1 only and holds its queues in RAM (docs/gateway.md, "Embedded broker").
LOCAL_ONLY = (
    "⚠ CHỈ DÙNG CỤC BỘ / LOCAL USE ONLY: broker ẩn danh, không mã hoá, không phân quyền / anonymous, "
    "no TLS, no ACL; production: Mosquitto with mosquitto-conf (docs/provisioning.md)"
)


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if a server could listen on it now, else any free port.

    The probe binds with SO_REUSEADDR, as uvicorn and the broker do: a port whose last connections
    are in TIME_WAIT (a demo restarted within a minute) is free for them and must look free here,
    or the gateway and displays move to random ports; a port something listens on still fails."""
    if preferred:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args[:4]} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.3):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def demo_devices(n: int) -> list[tuple[str, str, int]]:
    """(device_id, office, counter) for n kiosks, spread over the demo offices: k03390-q1, k03405-q1, …"""
    out = []
    for i in range(n):
        office, counter = DEMO_OFFICES[i % len(DEMO_OFFICES)], i // len(DEMO_OFFICES) + 1
        out.append((f"k{office}-q{counter}", office, counter))
    return out


def gateway_config(time_scale: float, min_k: int | None = None) -> str:
    """The example gateway config with the demo's compressed wait target.

    Demo-only time compression: the simulated citizens act in real time (waits are real seconds from
    the kiosks' monotonic clocks, unchanged), but one real second stands for ``time_scale`` seconds of
    an office day, so the wait target is divided by it (20 min at scale 20 = 60 s). Every page says so
    through ``[web] notice``. Scale 1 is the example config as it is."""
    doc = tomllib.loads(GATEWAY_EXAMPLE.read_text(encoding="utf-8"))
    if min_k is not None:  # demo cameras publish windows of k = DEMO_K visits
        doc.setdefault("integrity", {})["min_k"] = min_k
    doc.setdefault("auth", {})["users"] = [
        {"username": u, "role": role, "password_hash": h, **({"offices": list(offices)} if offices else {})}
        for u, _pw, role, offices, h in DEMO_REPORT_USERS]
    if time_scale != 1:
        target = doc["kpi"]["wait_target_s"]
        doc["kpi"]["wait_target_s"] = target / time_scale
        doc["web"]["notice"] = (
            f"Bản demo, thời gian nén ×{time_scale:g}: chỉ tiêu chờ {target / 60:g} phút tính là "
            f"{target / time_scale:g} giây; thời gian chờ hiển thị là thời gian thật. "
            f"(Demo time ×{time_scale:g}: the {target / 60:g}-min target is {target / time_scale:g} s; "
            "waits shown are real.)")
        doc["booking"] = demo_booking(doc["booking"])
    return tomli_w.dumps(doc)


def demo_booking(booking: dict, now: datetime | None = None) -> dict:
    """Bookable at the demo's pace: 10-minute slots from now for four hours (not past midnight), and a
    budget for the simulated citizens, who all come from 127.0.0.1 (demo/bookings.py)."""
    now = now or datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
    start = now.replace(minute=now.minute - now.minute % 10, second=0, microsecond=0)
    end = min(start + timedelta(hours=4), start.replace(hour=23, minute=50))
    if end <= start + timedelta(minutes=10):  # just before midnight: the demo books tomorrow morning
        start, end = start.replace(hour=7, minute=0), start.replace(hour=11, minute=0)
    office = dict(booking["offices"][BOOKING_OFFICE])
    office |= {"hours": [f"{start:%H:%M}-{end:%H:%M}"], "slot_minutes": 10, "weekdays": list(range(7))}
    return booking | {"per_client_per_hour": 1000, "push_interval_s": 30.0,
                      "offices": {**booking["offices"], BOOKING_OFFICE: office}}


def kiosk_config(device_id: str, office: str, counter: int, command_key_hex: str = "",
                 office_name: str = "", call_early_min: int | None = None, camera: bool = False,
                 mqtt_protocol: str = "5", line: dict | None = None) -> str:
    doc = tomllib.loads(KIOSK_EXAMPLE.read_text(encoding="utf-8"))
    if line:  # [line]: the entrance kiosk or a counter on shared lines (device/config_line.py)
        doc["line"] = {"token": DEMO_LINE_TOKEN, **line}
    doc.setdefault("device", {}).update({"id": device_id, "office_code": office, "counter": counter})
    # The embedded broker (rumqttd) refuses MQTT 5 connections: the demo's kiosks speak 3.1.1 to it,
    # which cannot see an ACL refusal (it has no ACL anyway). Production: 5 (docs/kiosk.md).
    doc.setdefault("broker", {})["protocol"] = mqtt_protocol
    doc["device"].pop("office_name", None)
    if office_name:  # shown on the ticket and the counter display instead of the code
        doc["device"]["office_name"] = office_name
    if call_early_min is not None:  # demo: a redeemed appointment is due at once (its slot is soon)
        doc["calling"]["appointments"]["call_early_min"] = call_early_min
    if camera:  # the generated clip as the camera; frames stay in the kiosk's memory (docs/models.md)
        doc["camera"] = {"enabled": True, "source": f"folder:{CAMERA_CLIP}", "k": DEMO_K,
                         "window_s": DEMO_WINDOW_S}
    if command_key_hex:  # the kiosks run only commands signed by this gateway (docs/kiosk.md)
        doc.setdefault("commands", {})["trusted_keys"] = [command_key_hex]
    return tomli_w.dumps(doc)


def shared_line_registry(gw_cfg: Path, out: Path) -> None:
    """The bundled registry plus Bình Lư's entrance kiosk, bound to the lines' number
    (``ENTRANCE_COUNTER``, one more than the office's counters): its events carry that number, and the
    gateway refuses a counter outside the office's range (docs/kiosk.md#shared-lines-at-the-gateway)."""
    from gateway.config import Settings

    registry = tomllib.loads(Settings().registry_file.read_text(encoding="utf-8"))
    for office in registry["offices"]:
        if office["code"] == SHARED_LINE_OFFICE:
            office["counters"] = max(office["counters"], ENTRANCE_COUNTER)
    registry["devices"].append({"device_id": f"k{SHARED_LINE_OFFICE}-cua", "office_code": SHARED_LINE_OFFICE,
                                "counter": ENTRANCE_COUNTER})
    out.write_text(tomli_w.dumps(registry), encoding="utf-8")
    doc = tomllib.loads(gw_cfg.read_text(encoding="utf-8"))
    doc.setdefault("registry", {})["file"] = str(out)
    gw_cfg.write_text(tomli_w.dumps(doc), encoding="utf-8")


def registry_office_names() -> dict[str, str]:
    """Office code → name from the gateway's bundled registry (what the map shows)."""
    from gateway.config import Settings
    from gateway.registry import load_registry

    return {o["code"]: o["name"] for o in load_registry(Settings().registry_file).get("offices", [])}


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data = Path(args.data_dir).resolve()
        self.procs: list[subprocess.Popen] = []
        self.broker = None
        self.seen: Counter[str] = Counter()
        self.stop_event = threading.Event()
        self.archive_due: float | None = None  # when the older history starts (demo.archive)
        self.archive: subprocess.Popen | None = None

    def spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.data / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                env={**os.environ, **(env or {})}, start_new_session=True)
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        if self.args.fresh and self.data.exists():
            shutil.rmtree(self.data)
        (self.data / "logs").mkdir(parents=True, exist_ok=True)
        py = sys.executable

        broker_url = self.args.broker
        if not broker_url:
            from iotcore import Broker

            mqtt_port = free_port(1883)
            self.broker = Broker(port=mqtt_port, listen="127.0.0.1").start()
            broker_url = f"mqtt://127.0.0.1:{mqtt_port}"
            print(f"• MQTT broker (embedded, iotcore): {broker_url}")
            print(f"  {LOCAL_ONLY}")
        else:
            print(f"• MQTT broker: {broker_url}")
            if broker_url.startswith("mqtt://"):
                print(f"  ⚠ {broker_url} is plain MQTT: " + LOCAL_ONLY)
        self.broker_url = broker_url

        web_port = free_port(self.args.port)
        gw_cfg = self.data / "gateway.toml"
        gw_cfg.write_text(gateway_config(self.args.time_scale, DEMO_K if self.args.camera_counters else None),
                          encoding="utf-8")
        if self.args.shared_lines:
            shared_line_registry(gw_cfg, self.data / "registry.toml")
        gw = self.spawn("gateway", [py, "-m", "gateway.cli", "run", "--config", str(gw_cfg),
                                    "--broker", broker_url, "--port", str(web_port),
                                    "--data-dir", str(self.data / "gateway")],
                        env={"MOTCUA_ADMIN_PASSWORD": DEMO_ADMIN_PASSWORD})
        wait_port(web_port, 60, gw)
        self.web = f"http://127.0.0.1:{web_port}"
        print(f"• Gateway (SQLite in {self.data / 'gateway'}): {self.web}")
        devices = demo_devices(self.args.kiosks)
        if self.args.history_days:
            self.publish_history(devices, gw)

        urls = []
        from gateway.commands import command_key, public_hex

        gateway_pub = public_hex(command_key(self.data / "gateway"))
        office_names = registry_office_names()
        entrance = None  # (display URL, line API URL) of Bình Lư's entrance kiosk
        if self.args.shared_lines:
            entrance = self.start_entrance(broker_url, gateway_pub, office_names)
        for i, (device_id, office, counter) in enumerate(devices):
            cfg = self.data / "kiosks" / f"{device_id}.toml"
            cfg.parent.mkdir(parents=True, exist_ok=True)
            camera = counter <= self.args.camera_counters
            line = None
            if entrance and office == SHARED_LINE_OFFICE:
                fields = COUNTER_FIELDS.get(counter, ["land", "civil", "insurance"])
                line = {"role": "counter", "entrance_url": entrance[1], "fields": fields,
                        "token": counter_token(DEMO_LINE_TOKEN, counter)}
            text = kiosk_config(device_id, office, counter, gateway_pub, office_names.get(office, ""),
                                call_early_min=10, camera=camera,
                                mqtt_protocol="3.1.1" if self.broker is not None else "5", line=line)
            cfg.write_text(text, encoding="utf-8")
            http_port = free_port(8101 + i)
            data_dir = self.data / "kiosks" / device_id
            proc = self.spawn(device_id, [py, "-m", "device.cli", "run", "--config", str(cfg), "--simulate",
                                          "--broker", broker_url, "--data-dir", str(data_dir),
                                          "--http-port", str(http_port)])
            urls.append((device_id, f"http://127.0.0.1:{http_port}", proc, http_port))
        for device_id, url, proc, http_port in urls:
            wait_port(http_port, 60, proc)
            print(f"• Kiosk {device_id}: counter display {url}/")

        if self.args.camera_counters:
            print(f"• Cameras: counters 1-{self.args.camera_counters} of each office read the generated clip "
                  f"{CAMERA_CLIP.relative_to(REPO)}/ during visits; sentiment leaves a kiosk only as "
                  f"windows of >= {DEMO_K} visits (k)")
        if not self.args.no_citizens:
            for office in DEMO_OFFICES:
                rate, service = CITIZEN_PACE[office]
                cmd = [py, "-m", "device.simulate.citizens", "--seed", f"{self.args.seed}{office}",
                       "--rate-per-min", str(rate), "--service-s", *map(str, service),
                       "--priority-share", str(PRIORITY_SHARE[office])]
                shared = entrance is not None and office == SHARED_LINE_OFFICE
                if shared:
                    cmd += ["--entrance", entrance[0]]
                for device_id, url, _, _ in urls:
                    if device_id.startswith(f"k{office}-"):
                        counter = int(device_id.rsplit("q", 1)[1])
                        fields = COUNTER_FIELDS.get(counter, ["land", "civil", "insurance"])
                        cmd += ["--kiosk", f"{url}#{','.join(fields)}" if shared else url]
                self.spawn(f"citizens-{office}", cmd)
            print("• Simulated citizens: taking tickets (15 % priority at Bình Lư), being served, rating "
                  "(Tả Lèng busier than its counters can serve, so its waits grow)")
            if entrance and BOOKING_OFFICE == SHARED_LINE_OFFICE:  # codes are redeemed at the entrance
                self.start_bookings([entrance[0]])
            else:
                self.start_bookings([url for d, url, _, _ in urls if d.startswith(f"k{BOOKING_OFFICE}-")])
        if self.args.archive_months:
            self.fill_archive()
        self.archive_due = time.monotonic() + ARCHIVE_LATEST_S if self.args.archive_months else None
        if self.args.time_scale != 1:
            target = tomllib.loads(gw_cfg.read_text(encoding="utf-8"))["kpi"]["wait_target_s"]
            print(f"• Compressed time ×{self.args.time_scale:g}: wait target {target:g} s stands for "
                  f"{target * self.args.time_scale / 60:g} min (waits are real seconds); "
                  "Tả Lèng turns amber then red within a few minutes")

        print(f"\n  Bản đồ Bộ phận Một cửa / one-stop map:  {self.web}/map")
        print(f"  Đặt lịch hẹn / booking page:  {self.web}/dat-lich")
        if entrance:  # Bình Lư's entrance kiosk: a ticket per service field, appointment codes
            print(f"  Máy cấp số Bình Lư / entrance touch page:  {entrance[0]}/lay-so")
        print(f"  Fleet health (login admin / {DEMO_ADMIN_PASSWORD}):  {self.web}/fleet")
        heads = ", ".join(f"{u} / {pw} ({role})" for u, pw, role, _o, _h in DEMO_REPORT_USERS)
        print(f"  Báo cáo / reports (login {heads}, or admin):  {self.web}/reports")
        print(f"  API docs:  {self.web}/docs      Logs: {self.data / 'logs'}\n")

    def start_entrance(self, broker_url: str, gateway_pub: str,
                       office_names: dict[str, str]) -> tuple[str, str]:
        """Bình Lư's entrance kiosk (owner of its shared lines): (display URL, LAN line API URL)."""
        device_id, office = f"k{SHARED_LINE_OFFICE}-cua", SHARED_LINE_OFFICE
        line_port, http_port = free_port(8110), free_port(8100)
        cfg = self.data / "kiosks" / f"{device_id}.toml"
        cfg.parent.mkdir(parents=True, exist_ok=True)
        line = {"role": "entrance", "listen_host": "127.0.0.1", "listen_port": line_port}
        protocol = "3.1.1" if self.broker is not None else "5"
        text = kiosk_config(device_id, office, ENTRANCE_COUNTER, gateway_pub, office_names.get(office, ""),
                            call_early_min=10, mqtt_protocol=protocol, line=line)
        cfg.write_text(text, encoding="utf-8")
        proc = self.spawn(device_id, [sys.executable, "-m", "device.cli", "run", "--config", str(cfg),
                                      "--simulate", "--broker", broker_url, "--data-dir",
                                      str(self.data / "kiosks" / device_id), "--http-port", str(http_port)])
        wait_port(line_port, 60, proc)
        url = f"http://127.0.0.1:{http_port}"
        print(f"• Entrance kiosk {device_id} (máy cấp số, shared lines per field): {url}/  "
              f"touch page {url}/lay-so  line API for the counters http://127.0.0.1:{line_port}")
        return url, f"http://127.0.0.1:{line_port}"

    def fill_archive(self) -> None:
        """The months before the published history, written as the writer's rows by ``demo.archive``
        in a process of its own at the lowest CPU priority (it prints when done)."""
        from demo.history import TZ, working_days

        today = datetime.now(TZ).date()
        recent = working_days(today, self.args.history_days) if self.args.history_days else [today]
        first = today - timedelta(days=round(self.args.archive_months * 30.44))
        cmd = [sys.executable, "-m", "demo.archive", "--db", str(self.data / "gateway" / "gateway.sqlite3"),
               "--kiosks", str(self.args.kiosks), "--first", first.isoformat(),
               "--last", (recent[0] - timedelta(days=1)).isoformat(), "--seed", str(self.args.seed),
               "--time-scale", str(self.args.time_scale)]
        self.archive = subprocess.Popen(cmd, cwd=REPO, start_new_session=True)
        print(f"• Kiosks online: older history ({self.args.archive_months} months) being written in the "
              "background for /reports (demo.archive)", flush=True)

    def start_bookings(self, kiosks: list[str]) -> None:
        """Simulated citizens booking on /dat-lich and typing their code at a kiosk (demo/bookings.py)."""
        import random

        from demo.bookings import BookingCitizens

        self.bookings = BookingCitizens(self.web, BOOKING_OFFICE, kiosks, random.Random(self.args.seed),
                                        self.stop_event, every_s=60.0)  # Bình Lư's counters keep up
        threading.Thread(target=self.bookings.run, name="bookings", daemon=True).start()
        print(f"• Simulated bookings on {self.web}/dat-lich for Bình Lư; codes typed at its kiosks "
              "(some cancel, some never come)")

    def publish_history(self, devices: list[tuple[str, str, int]], gw: subprocess.Popen) -> None:
        """Past working days for the demo counters (demo.history), once the gateway is subscribed."""
        import httpx

        from demo.history import generate, publish

        deadline = time.monotonic() + 60
        while not httpx.get(self.web + "/healthz", timeout=5).json().get("mqtt"):
            if time.monotonic() > deadline or gw.poll() is not None:
                raise RuntimeError("the gateway did not connect to the broker; see its log")
            time.sleep(0.3)
        time.sleep(1.0)  # its subscription follows the connection
        events = generate(devices, self.args.history_days, self.args.seed, time_scale=self.args.time_scale)
        host, port = self.broker_url.split("://", 1)[1].rsplit(":", 1)
        acked = publish(host, int(port), events)
        print(f"• Demo history: {acked} events for the past {self.args.history_days} working days "
              "(synthetic, boot_id 'demo-history'; re-sent events are counted once)")

    def watch_events(self) -> None:
        """Print one line per event seen on the broker (the kiosk half's view of the traffic)."""
        host_port = self.broker_url.split("://", 1)[1]
        host, port = host_port.rsplit(":", 1)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="motcua-demo-watch")

        def on_message(_c, _u, msg: mqtt.MQTTMessage) -> None:
            if not msg.topic.endswith("/events"):
                return
            try:
                ev = decode(msg.topic, msg.payload).message
            except ValueError as exc:
                print(f"  ! rejected {msg.topic}: {exc}")
                return
            self.seen[ev.type] += 1
            if not self.args.quiet:
                d = ev.data.model_dump()  # typed event data (contract.payloads.AnyEvent)
                extra = d.get("label") or d.get("level_label") or d.get("name") or ""
                print(f"  {ev.ts:%H:%M:%S} {ev.device_id:<12} #{ev.seq:<5} {ev.type:<18} {extra}")

        client.on_connect = lambda c, *_: c.subscribe(SUBSCRIBE_ALL, qos=0)
        client.on_message = on_message
        client.connect(host, int(port))
        client.loop_start()
        self.watch_client = client

    def supervise(self) -> None:
        started = time.monotonic()
        while not self.stop_event.is_set():
            for p in self.procs:
                if p.poll() is not None:
                    logs = self.data / "logs"
                    raise RuntimeError(f"{p.args[2:5]} exited with code {p.returncode}; see {logs}")
            if self.args.duration and time.monotonic() - started > self.args.duration:
                return
            if self.archive_due is not None and (time.monotonic() > self.archive_due or self.kiosks_online()):
                self.archive_due = None
                self.fill_archive()
            self.stop_event.wait(1.0)

    def kiosks_online(self) -> bool:
        """All demo kiosks online on the gateway (then the older history may take the CPU)."""
        import httpx

        try:
            offices = httpx.get(self.web + "/api/v1/offices", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return False
        return sum(o["devices_online"] for o in offices if o["code"] in DEMO_OFFICES) >= self.args.kiosks

    def stop(self) -> None:
        if self.archive is not None and self.archive.poll() is None:
            self.archive.terminate()  # its unfinished transaction is rolled back; a rerun completes it
            self.archive.wait(30)
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        if getattr(self, "watch_client", None):
            self.watch_client.loop_stop()
        if self.broker is not None:
            self.broker.stop()
        if getattr(self, "bookings", None):
            b = self.bookings
            print(f"bookings: {b.booked} booked, {b.cancelled} cancelled, {b.redeemed} redeemed at a kiosk, "
                  f"{b.errors} errors")
        if self.seen:
            print("events seen: " + ", ".join(f"{k}={v}" for k, v in sorted(self.seen.items())))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="motcua-demo", description=__doc__)
    ap.add_argument("--kiosks", type=int, default=6, help="simulated kiosks (default 6, across 2 offices)")
    ap.add_argument("--port", type=int, default=8000, help="web port (default 8000, else a free one)")
    ap.add_argument("--broker", default="", help="use this broker instead of the embedded one")
    ap.add_argument("--data-dir", default=str(REPO / "demo-data"))
    ap.add_argument("--fresh", action="store_true", help="start from empty data")
    ap.add_argument("--seed", type=int, default=468)
    ap.add_argument("--no-citizens", action="store_true")
    ap.add_argument("--no-shared-lines", dest="shared_lines", action="store_false",
                    help="Bình Lư without its entrance kiosk (each counter keeps its own line)")
    ap.add_argument("--camera-counters", type=int, default=3,
                    help="counters per office whose kiosk runs its camera on the generated clip "
                         "demo/camera (default 3 = all; 0 = cameras off)")
    ap.add_argument("--history-days", type=int, default=20,
                    help="synthetic past working days to publish first (0 = none)")
    ap.add_argument("--archive-months", type=int, default=13,
                    help="older history for /reports, written in the background (0 = none)")
    ap.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE,
                    help="demo-only compressed time: the gateway's wait target is divided by this "
                         f"(default {DEFAULT_TIME_SCALE:g}: 20 min -> 60 s; 1 = real time)")
    ap.add_argument("--quiet", action="store_true", help="do not print each event")
    ap.add_argument("--duration", type=float, default=0, help="stop after N seconds (0 = until Ctrl+C)")
    args = ap.parse_args(argv)
    if not 1 <= args.time_scale <= 600:
        ap.error("--time-scale must be between 1 (real time) and 600")
    demo = Demo(args)
    signal.signal(signal.SIGTERM, lambda *_: demo.stop_event.set())
    try:
        demo.start()
        demo.watch_events()
        demo.supervise()
    except KeyboardInterrupt:
        pass
    finally:
        demo.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
