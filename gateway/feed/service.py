"""Wires the feed parts a gateway's settings ask for: producer, pushers, hub subscriber and puller.

``create_app`` builds one :class:`FeedService` (``app.state.feed``), starts it after the database is
migrated and stops it before the store closes. Each part is its own thread; none is started when
``[feed]`` and ``[hub]`` are off (the default).
"""

from __future__ import annotations

from typing import Any

from gateway.feed.hub import HubPuller, HubSubscriber
from gateway.feed.producer import FeedProducer
from gateway.feed.push import HttpsPusher, MqttPusher
from gateway.store import Store


class FeedService:
    def __init__(self, settings: Any, store: Store) -> None:
        self.feed_cfg, self.hub_cfg = settings.feed, settings.hub
        self.store = store
        self.producer: FeedProducer | None = None
        self.pushers: list[MqttPusher | HttpsPusher] = []
        self.subscriber: HubSubscriber | None = None
        self.puller: HubPuller | None = None
        if self.feed_cfg.enabled:
            self.producer = FeedProducer(store, self.feed_cfg, wait_target_s=settings.kpi.wait_target_s,
                                         timezone=settings.kpi.timezone, min_k=settings.integrity.min_k)
        self._settings = settings

    def start(self) -> None:
        """Start the configured parts (the database must be migrated)."""
        if self.producer is not None:
            self.producer.start()
            if self.feed_cfg.mqtt.url:
                self.pushers.append(MqttPusher(self.store, self.feed_cfg))
            if self.feed_cfg.https_url:
                self.pushers.append(HttpsPusher(self.store, self.feed_cfg))
        if self.hub_cfg.enabled and self.hub_cfg.mqtt.url:
            self.subscriber = HubSubscriber(self.store, self.hub_cfg)
            self.subscriber.start()
        if self.hub_cfg.enabled and self.hub_cfg.pull:
            self.puller = HubPuller(self.store, self.hub_cfg)
            self.puller.start()
        for p in self.pushers:
            p.start()

    def stop(self) -> None:
        for part in (*self.pushers, self.producer, self.subscriber, self.puller):
            if part is not None:
                part.stop()

    def status(self) -> dict[str, Any]:
        return {
            "feed_enabled": self.feed_cfg.enabled,
            "source_id": self.feed_cfg.source_id,
            "invalid_hours": self.producer.invalid if self.producer else 0,
            "push": [{"target": p.target, "acked_id": p.acked, "backlog": p.backlog(), "sent": p.sent}
                     for p in self.pushers],
            "hub_enabled": self.hub_cfg.enabled,
            "hub_mqtt_connected": bool(self.subscriber and self.subscriber.connected.is_set()),
            "hub_pull_errors": self.puller.errors if self.puller else 0,
        }
