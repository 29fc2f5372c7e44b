"""Error reporting: Sentry, when ``SENTRY_DSN`` is set."""

from __future__ import annotations

import sentry_sdk
from sentry_sdk.integrations.sanic import SanicIntegration

from gateway.settings import Settings


def setup_sentry(settings: Settings) -> None:
    """Report unhandled errors to Sentry (each worker initialises its own client)."""
    if not settings.sentry_dsn:
        return
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.environment,
        integrations=[SanicIntegration()],
        send_default_pii=False,
        traces_sample_rate=0.0,
    )
