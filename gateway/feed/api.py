"""HTTP side of the feed and the hub.

* ``GET /api/v1/feed?cursor=&limit=``: read-only, authenticated (a feed-only token from ``[feed]
  pull_tokens_sha256``, or any signed-in user/API token: they all hold at least ``viewer``). Records
  after the cursor in production order; the cursor is opaque and monotonic, so asking again with the
  same cursor gives the same records (plus any produced since) and nothing is skipped. The records
  are the stored JSON, byte for byte as pushed.
* ``POST /api/v1/hub/records`` (hub, HTTPS push): a token from ``[hub] ingest_tokens``, which may
  bring records of its own source only (another is ``rejected:source_mismatch``); the answer is 200
  with the outcome even for a refused record (counted), so a sender never retries a record forever;
  401 without a valid token.
* ``GET /api/v1/hub/offices``, ``/api/v1/hub/map.geojson`` (public, as ``/api/v1/offices``: anonymous
  aggregates), ``GET /api/v1/feed/status`` (operator): the feed's and hub's state and counters.
"""

from __future__ import annotations

import hmac
import json
from datetime import datetime
from functools import partial
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from contract.feed import FeedPage
from gateway.api_common import OPERATOR, get_store
from gateway.auth import get_authenticator, sha256_hex
from gateway.config import Settings
from gateway.feed.hub_store import accept, hub_offices, hub_period, kpi_block
from gateway.feed.producer import decode_cursor, encode_cursor, records_after
from gateway.store import Store

router = APIRouter()


def _bearer_in(request: Request, digests: list[str]) -> bool:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return False
    d = sha256_hex(header[7:].strip())
    return any(hmac.compare_digest(d, x) for x in digests)


def _bearer_source(request: Request, tokens: list[Any]) -> str | None:
    """The source whose ingest token the request carries, or None."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    d = sha256_hex(header[7:].strip())
    found = None
    for t in tokens:  # every entry compared: the time does not tell which one matched
        if hmac.compare_digest(d, t.token_sha256):
            found = t.source
    return found


def feed_reader(request: Request) -> None:
    """A feed-only token, or any principal the gateway's auth knows (viewer and up)."""
    cfg = request.app.state.settings.feed
    if _bearer_in(request, cfg.pull_tokens_sha256):
        return
    if get_authenticator(request).principal(request) is None:
        raise HTTPException(401, "authentication required", headers={"WWW-Authenticate": "Bearer"})


@router.get("/api/v1/feed", tags=["feed"], dependencies=[Depends(feed_reader)],
            responses={200: {"model": FeedPage, "description": "records after the cursor"}})
def feed_page(request: Request, store: Annotated[Store, Depends(get_store)],
              cursor: Annotated[str, Query(max_length=64)] = "",
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    """Hourly anonymous office figures (contract/schemas/feed-record.v1.json), oldest first."""
    if not request.app.state.settings.feed.enabled:
        raise HTTPException(404, "the upward feed is not enabled on this gateway ([feed] enabled)")
    try:
        after = decode_cursor(cursor)
    except ValueError:
        raise HTTPException(400, f"cursor={cursor[:64]!r}: not a cursor of this feed") from None
    rows = records_after(store, after, limit + 1)
    page, more = rows[:limit], len(rows) > limit
    last = page[-1][0] if page else after
    body = ('{"records":[' + ",".join(r[3] for r in page) + "],"
            + f'"next_cursor":{json.dumps(encode_cursor(last))},"more":{json.dumps(more)}}}')
    return Response(body, media_type="application/json")


@router.post("/api/v1/hub/records", tags=["feed"])
async def hub_receive(request: Request) -> dict[str, str]:
    """One record pushed by a commune gateway (HTTPS push); idempotent by (office, hour, revision)."""
    cfg = request.app.state.settings.hub
    if not cfg.enabled:
        raise HTTPException(404, "hub mode is not enabled on this gateway ([hub] enabled)")
    source = _bearer_source(request, cfg.ingest_tokens)
    if source is None:
        raise HTTPException(401, "a hub ingest token is required", headers={"WWW-Authenticate": "Bearer"})
    body = await request.body()
    outcome = await run_in_threadpool(partial(accept, source=source), request.app.state.store, body, cfg)
    return {"outcome": outcome}


def _day_start(request: Request) -> float:
    tz = ZoneInfo(request.app.state.settings.kpi.timezone)
    now = datetime.now(tz)
    return now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


@router.get("/api/v1/hub/offices", tags=["feed"])
def hub_office_list(request: Request, store: Annotated[Store, Depends(get_store)]) -> list[dict[str, Any]]:
    """Offices the hub receives figures for: source gateway, latest hour, and today's figures."""
    return hub_offices(store, _day_start(request), request.app.state.settings.kpi.wait_target_s)


@router.get("/api/v1/hub/map.geojson", tags=["feed"],
            responses={200: {"content": {"application/geo+json": {}}}})
def hub_geojson(request: Request, store: Annotated[Store, Depends(get_store)]) -> Response:
    feats = [{"type": "Feature", "id": o["office_code"],
              "geometry": {"type": "Point", "coordinates": [o["lon"], o["lat"]]},
              "properties": {k: v for k, v in o.items() if k not in ("lat", "lon")}}
             for o in hub_office_list(request, store) if o["lat"] is not None]
    return Response(json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False),
                    media_type="application/geo+json")


@router.get("/api/v1/feed/status", tags=["feed"], dependencies=[Depends(OPERATOR)])
def feed_status(request: Request, store: Annotated[Store, Depends(get_store)]) -> dict[str, Any]:
    counters = {k: v for k, v in store.counters().items() if k.startswith("hub:")}
    return {**request.app.state.feed.status(), "hub_counters": counters}


def overlay_hub(settings: Settings, store: Store, kpis: dict[str, dict[str, Any]]
                ) -> dict[str, dict[str, Any]]:
    """In hub mode, an office with no visits of its own today shows the hub's figures for today (the
    province map); a commune gateway's own offices keep their live figures."""
    if not settings.hub.enabled:
        return kpis
    tz = ZoneInfo(settings.kpi.timezone)
    start = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    empty = [c for c, k in kpis.items() if not k["visits"]]
    sums = hub_period(store, start, start + 86400, empty) if empty else {}
    target = settings.kpi.wait_target_s
    return {**kpis, **{c: kpi_block(v, target) for c, v in sums.items()}}
