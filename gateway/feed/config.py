"""``[feed]`` and ``[hub]`` settings (pydantic, ``extra="forbid"``, strict), mounted in ``gateway.config``.

Kept here rather than in gateway/config.py so that file only gains two lines; this module must not
import ``gateway.config`` (that one imports this).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.feed import SourceId
from contract.mqtt_url import KIOSK_SCHEMES, parse_broker_url
from contract.payloads import OfficeCode


def check_web_url(url: str, key: str) -> None:
    """``https://``, or ``http://`` to this machine only: a bearer token and the records must not
    cross a network in clear (anyone on the path could read the token or change the figures)."""
    parts = urlparse(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1"):
        return
    raise ValueError(f"{key}={url!r}: must be https:// (http:// on loopback only)")


Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="motcua-gateway token new")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)


class UpstreamMqtt(_Section):
    """An MQTT broker between gateways: URL and TLS as the kiosk's (client certificate optional)."""

    url: str = Field("", description='"" = off; mqtt://host:1883 or mqtts://host:8883')
    username: str = ""
    password: str = ""
    ca_file: str = Field("", description="CA bundle for mqtts:// (empty = the system's)")
    cert_file: str = Field("", description="client certificate (PEM), if the broker asks for one")
    key_file: str = ""
    client_id: str = Field("", description='"" = motcua-feed-<source_id> / motcua-hub-<hostname>; '
                           "fixed, so the persistent session survives restarts")
    keepalive_s: int = Field(30, ge=5, le=3600)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v:
            parse_broker_url(v, KIOSK_SCHEMES)
        return v

    @model_validator(mode="after")
    def _files(self) -> UpstreamMqtt:
        for key in ("ca_file", "cert_file", "key_file"):
            val = getattr(self, key)
            if val and not Path(val).is_file():
                raise ValueError(f"{key}={val!r}: file not found")
        return self


class FeedSettings(_Section):
    """This gateway's upward feed: produced hourly records, served at ``/api/v1/feed``, pushed."""

    enabled: bool = Field(False, description="produce hourly records (needed for pull and push)")
    source_id: SourceId | None = Field(None, description="this gateway's id in every record (unique in "
                                       "the province), e.g. 'lc-03390'; required when enabled")
    interval_s: float = Field(60.0, gt=0, le=3600, description="how often closed hours are (re)computed")
    close_after_s: float = Field(300.0, ge=0, le=86_400, description="an hour is closed this long after "
                                 "it ends (late events after that make a new revision)")
    recheck_days: int = Field(3, ge=1, le=90, description="service days recomputed each time: later "
                              "events for older days are not re-issued")
    pull_tokens_sha256: list[Sha256Hex] = Field(default_factory=list, description="SHA-256 of bearer tokens "
                                          "that may read only the feed (any signed-in viewer may too)")
    mqtt: UpstreamMqtt = Field(default_factory=UpstreamMqtt, description="push to this broker (QoS 1)")
    https_url: str = Field("", description='"" = off; POST each record here (HTTP 2xx = acknowledged)')
    https_token: str = Field("", description="sent as Authorization: Bearer (env MOTCUA_FEED_TOKEN)")
    https_ca_file: str = Field("", description="CA bundle for https_url (empty = the system's)")
    max_in_flight: int = Field(100, ge=1, le=1000, description="MQTT records awaiting PUBACK")
    retry_min_s: float = Field(1.0, gt=0, le=3600, description="first wait after a failed push ...")
    retry_max_s: float = Field(60.0, gt=0, le=86_400, description="... doubling up to this")

    @model_validator(mode="after")
    def _coherent(self) -> FeedSettings:
        if self.enabled and self.source_id is None:
            raise ValueError("source_id is required when the feed is enabled")
        if (self.mqtt.url or self.https_url) and not self.enabled:
            raise ValueError("push targets set but enabled = false")
        if self.https_url:
            check_web_url(self.https_url, "https_url")
        if self.retry_max_s < self.retry_min_s:
            raise ValueError("retry_max_s must be >= retry_min_s")
        return self


class PullSource(_Section):
    url: str = Field(description="a commune gateway's base URL, e.g. https://gw-03390.example:8000")
    source: SourceId = Field(description="the source id this commune's records carry; a record naming "
                             "another is refused (source_mismatch): one commune cannot speak for another")
    token: str = Field("", description="bearer token for its /api/v1/feed")
    ca_file: str = ""

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        check_web_url(v, "url")
        return v


class IngestToken(_Section):
    """An HTTPS-push token, bound to the one source whose records it may bring."""

    source: SourceId = Field(description="the commune gateway's [feed] source_id")
    token_sha256: Sha256Hex


class HubSettings(_Section):
    """Province hub: ingest the feeds of commune gateways, by MQTT subscription and/or HTTP pull."""

    enabled: bool = False
    mqtt: UpstreamMqtt = Field(default_factory=UpstreamMqtt, description="subscribe motcua-feed/v1/# here")
    sources: list[SourceId] = Field(default_factory=list, description="accepted source ids (empty = any); "
                                    "others are counted rejections")
    pull: list[PullSource] = Field(default_factory=list, description="commune feeds to pull")
    pull_interval_s: float = Field(30.0, gt=0, le=86_400)
    pull_page: int = Field(500, ge=1, le=5000)
    ingest_tokens: list[IngestToken] = Field(
        default_factory=list, description="tokens that may POST records to /api/v1/hub/records, each for "
        "one source")
    min_k: int = Field(5, ge=2, le=1000, description="sentiment blocks over fewer visits are rejected")
    source_offices: dict[SourceId, list[OfficeCode]] = Field(
        default_factory=dict, description="the offices each source speaks for; an office listed here "
        "is refused from any other source (foreign_office), and a listed source may send only its own. "
        "Offices listed nowhere belong to the first source heard")

    @model_validator(mode="after")
    def _coherent(self) -> HubSettings:
        if not self.enabled and (self.mqtt.url or self.pull or self.ingest_tokens):
            raise ValueError("hub sources set but enabled = false")
        claimed: dict[str, str] = {}
        for src, offices in self.source_offices.items():
            for office in offices:
                if claimed.setdefault(office, src) != src:
                    raise ValueError(f"source_offices: office {office} listed for two sources "
                                     f"({claimed[office]}, {src})")
        bound = {p.source for p in self.pull} | {t.source for t in self.ingest_tokens}
        if self.sources and not bound <= set(self.sources):
            extra = sorted(bound - set(self.sources))
            raise ValueError(f"pull/ingest_tokens name sources not in [hub] sources: {extra}")
        return self
