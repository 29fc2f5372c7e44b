"""The typed application context: everything a worker holds, built by the factory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sanic import Sanic
from sanic.config import Config

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from gateway.auth import Authenticator
    from gateway.cors import Cors
    from gateway.settings import Settings
    from gateway.throttling import Throttle
    from realtime.bus import EventBus


@dataclass
class AppContext:
    settings: Settings
    auth: Authenticator
    bus: EventBus
    throttle: Throttle
    cors: Cors
    redis: Redis | None = None
    extras: dict[str, Any] = field(default_factory=dict)


GatewayApp = Sanic[Config, AppContext]
