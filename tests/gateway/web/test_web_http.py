"""Login rate limit, CSRF, sessions and the SSE stream over HTTP against the real gateway (httpx)."""

from __future__ import annotations

import queue
import re
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from gateway.auth import SESSION_COOKIE
from tests.gateway.conftest import wait_for
from tests.gateway.kiosk_sim import EventFactory, Publisher
from tests.gateway.web.conftest import OPERATOR, VIEWER, auth_section

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def form_token(client: httpx.Client, path: str = "/login") -> str:
    r = client.get(path)
    assert r.status_code == 200, r.text
    form = r.text[r.text.index('action="/login"'):]  # (the header's logout form has its own token)
    m = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert m, "no csrf_token in the form"
    return m.group(1)


def page_csrf(client: httpx.Client) -> str:
    r = client.get("/fleet", headers={"accept": "text/html"})
    assert r.status_code == 200, r.status_code
    m = re.search(r'<meta name="csrf-token" content="([^"]+)">', r.text)
    assert m
    return m.group(1)


def do_login(client: httpx.Client, user: str, password: str, token: str | None = None) -> httpx.Response:
    token = form_token(client) if token is None else token
    return client.post("/login", data={"username": user, "password": password, "csrf_token": token,
                                       "next": "/fleet"})


def test_login_rate_limit_csrf_and_logout(mosquitto, gateway_factory) -> None:
    auth = {**auth_section(), "login_rate_limit": {"max_failures": 3, "window_s": 300}}
    gw = gateway_factory(mosquitto.url, auth=auth)
    op = httpx.Client(base_url=gw.base, timeout=30)
    viewer = httpx.Client(base_url=gw.base, timeout=30)
    try:
        # A login form posted without its token (e.g. from another site) is refused.
        form_token(op)
        r = op.post("/login", data={"username": OPERATOR[0], "password": OPERATOR[1], "csrf_token": "forged"})
        assert r.status_code == 403 and SESSION_COOKIE not in r.cookies
        r = httpx.post(gw.base + "/login", data={"username": OPERATOR[0], "password": OPERATOR[1]})
        assert r.status_code in (403, 422) and SESSION_COOKIE not in r.cookies

        r = do_login(op, *OPERATOR)
        assert r.status_code == 303 and r.headers["location"] == "/fleet"
        cookie = r.cookies[SESSION_COOKIE]
        set_cookie = r.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=lax" in set_cookie
        assert op.get("/api/v1/fleet").status_code == 200

        # Cookie-authenticated writes need the session's CSRF token; the page carries it.
        body = {"name": "selftest", "args": {}}
        r = op.post("/api/v1/devices/k03390-q1/commands", json=body)
        assert r.status_code == 403 and "CSRF" in r.json()["detail"]
        r = op.post("/api/v1/devices/k03390-q1/commands", json=body, headers={"X-CSRF-Token": "forged"})
        assert r.status_code == 403
        token = page_csrf(op)
        r = op.post("/api/v1/devices/k03390-q1/commands", json=body, headers={"X-CSRF-Token": token})
        assert r.status_code == 202 and r.json()["issued_by"] == OPERATOR[0]
        # A bearer token needs no CSRF token (no ambient credential to abuse).
        assert gw.ops.post("/api/v1/devices/k03390-q1/commands", json=body).status_code == 202

        # A viewer may sign in but not see the fleet.
        assert do_login(viewer, *VIEWER).status_code == 303
        assert viewer.get("/api/v1/fleet").status_code == 403
        assert viewer.get("/fleet", headers={"accept": "text/html"}).status_code == 403

        # Rate limit per IP + user: 3 failures, then even the right password is refused for a while.
        attacker = httpx.Client(base_url=gw.base, timeout=30)
        for _ in range(3):
            r = do_login(attacker, VIEWER[0], "wrong-password")
            assert r.status_code == 401 and "Sai tên đăng nhập hoặc mật khẩu" in r.text
        r = do_login(attacker, *VIEWER)
        assert r.status_code == 429 and SESSION_COOKIE not in r.cookies
        assert 1 <= int(r.headers["retry-after"]) <= 300 and "Đăng nhập sai quá nhiều lần" in r.text
        assert gw.app.state.auth.rate_limited_logins >= 1
        attacker.close()
        # Another user from the same address is not locked out by someone else's failures.
        other = httpx.Client(base_url=gw.base, timeout=30)
        assert do_login(other, *OPERATOR).status_code == 303
        other.close()

        # Logout needs the token too, then the old cookie is dead even if replayed.
        assert op.post("/logout", data={"csrf_token": "forged"}).status_code == 403
        r = op.post("/logout", data={"csrf_token": token})
        assert r.status_code == 303 and r.headers["location"] == "/map"
        replay = httpx.Client(base_url=gw.base, timeout=30, cookies={SESSION_COOKIE: cookie})
        assert replay.get("/api/v1/fleet").status_code == 401
        replay.close()
        # Open redirects are not followed after login.
        assert do_login(op, *OPERATOR, token=None).headers["location"] == "/fleet"
        t = form_token(op)
        r = op.post("/login", data={"username": OPERATOR[0], "password": OPERATOR[1], "csrf_token": t,
                                    "next": "//evil.example/x"})
        assert r.status_code == 303 and r.headers["location"] == "/fleet"
    finally:
        op.close()
        viewer.close()


def test_pages_are_self_contained() -> None:
    """Templates and our JS/CSS reference nothing outside the gateway (no CDN, no web fonts)."""
    from gateway.web.routes import HERE

    pattern = re.compile(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.I)
    for path in [*HERE.glob("templates/*.html"), *HERE.glob("static/*.js"), *HERE.glob("static/*.css")]:
        hits = [m.group(0) for m in pattern.finditer(path.read_text(encoding="utf-8"))]
        assert hits == [], f"{path.name} references {hits}"


class SseReader:
    """Reads an SSE response in a thread; events land in a queue as (event, data) pairs."""

    def __init__(self, client: httpx.Client, path: str) -> None:
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.ready = threading.Event()
        self._client = client
        self._path = path
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(30), "stream did not open"

    def _run(self) -> None:
        try:
            self._read()
        except (httpx.HTTPError, OSError, RuntimeError) as exc:  # close() pulled the connection away
            if not self._stop:
                self.events.put(("error", repr(exc)))

    def _read(self) -> None:
        with self._client.stream("GET", self._path) as r:
            ctype = r.headers.get("content-type", "")
            if not ctype.startswith("text/event-stream"):
                self.events.put(("error", f"content-type {ctype!r}, status {r.status_code}"))
                return
            event = "message"
            for line in r.iter_lines():
                if self._stop:
                    return
                if line.startswith(":"):
                    self.events.put(("comment", line))
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    self.events.put((event, line[5:].strip()))
                    if event == "hello":
                        self.ready.set()
                    event = "message"

    def until(self, kind: str, timeout: float = 60) -> list[tuple[str, str]]:
        """Everything received up to and including the first ``kind`` event."""
        seen = []
        while True:
            item = self.events.get(timeout=timeout)
            assert item[0] != "error", f"stream failed: {item[1]}"
            seen.append(item)
            if item[0] == kind:
                return seen

    def close(self) -> None:
        """Disconnect like a browser tab closing."""
        self._stop = True
        self._client.close()


def test_sse_stream_public_offices_operator_devices(mosquitto, gateway_factory) -> None:
    gw = gateway_factory(mosquitto.url)
    public = httpx.Client(base_url=gw.base, timeout=httpx.Timeout(30, read=120))
    ops = httpx.Client(base_url=gw.base, timeout=httpx.Timeout(30, read=120),
                       headers=dict(gw.ops.headers))
    pub_stream = SseReader(public, "/api/v1/stream?heartbeat_s=1")
    ops_stream = SseReader(ops, "/api/v1/stream?heartbeat_s=1")
    assert any(k == "comment" for k, _ in pub_stream.until("comment"))  # heartbeat

    fac = EventFactory("k03405-q2", "03405", counter=2)
    kiosk = Publisher(mosquitto.port)
    kiosk.status(fac.status())
    kiosk.flush()
    device_events = ops_stream.until("device")
    assert '"k03405-q2"' in device_events[-1][1]

    now = datetime.now(UTC)
    for ev in fac.visit(1, now.astimezone(TZ).date(), now - timedelta(seconds=400), 300, 60):
        kiosk.event(ev)
    kiosk.flush()
    before_office = pub_stream.until("office")  # the device message came first on the hub: not shown
    assert all(kind != "device" for kind, _ in before_office)
    assert '"office_code": "03405"' in before_office[-1][1]
    kiosk.close()
    assert gw.app.state.live.subscriber_count == 2
    pub_stream.close()
    ops_stream.close()
    # Closed clients unsubscribe from the hub (no leak of queues per visitor).
    wait_for(lambda: gw.app.state.live.subscriber_count == 0, what="SSE subscribers released")
