"""Error reporting: Sentry, when ``SENTRY_DSN`` is set (each worker initialises its own client).

What leaves the process is decided here, not left to the SDK's defaults:

- Only what the gateway answers 500 for is reported: domain errors below 500 (a 404,
  a refused token, a rate limit) and database outages (503, logged once per 10 s by
  gateway/errors.py) are not (Sanic's error handler sees every one of them), both
  where Sanic errors are captured and in ``before_send``.
- Secrets are scrubbed three ways, because sentry_sdk's ``EventScrubber`` alone (a
  key denylist, exact names only) misses a query string (one string), a body that
  is not a JSON object, ``access_token`` (only ``token`` is listed), and any secret
  repeated in an exception message, a log line or a local variable's value.
  ``Scrubber`` extends it: keys are matched by fragment too (``*token*``,
  ``*secret*``, ``*password*``, ...), recursively everywhere the SDK looks (request
  headers, cookies, data, extra, user, breadcrumbs, span data, frame variables);
  the values found under sensitive keys of the request (query string, body) are
  then replaced wherever else they appear in the event; and patterns (``Bearer
  x``, ``Basic x``, JWTs, ``gwk_`` API keys, ``key=value`` pairs with a sensitive
  key in text) are cut from every string, in ``before_send`` and ``before_breadcrumb``.
- ``send_default_pii=False``; no auto-enabled integrations (Strawberry, asyncpg,
  Redis, httpx would add per-operation work to the hot path).
- No per-request work: sentry_sdk's ``SanicIntegration`` registers three Sanic signals
  and opens an isolation scope and a transaction on every request, which measured
  several times the cost of a whole request on this stack (docs/decisions.md).
  ``SanicErrors`` keeps what it is used for here: unhandled errors captured where
  Sanic looks up their handler (mechanism ``sanic``), with the request (method, URL,
  query, headers, body, route as the transaction, ``X-Request-ID`` as a tag) read
  from Sanic's current-request context when an event is built. Without a scope per
  request there are no breadcrumbs from log records (they would mix requests);
  error-level log records are still sent as events, with their request.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import parse_qsl

import orjson
import sentry_sdk
from sanic import Request
from sanic.exceptions import SanicException
from sanic.handlers import ErrorHandler
from sentry_sdk._types import AnnotatedValue
from sentry_sdk.integrations import Integration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.integrations.sanic import SanicRequestExtractor
from sentry_sdk.integrations.stdlib import StdlibIntegration
from sentry_sdk.scope import add_global_event_processor
from sentry_sdk.scrubber import DEFAULT_DENYLIST, DEFAULT_PII_DENYLIST, EventScrubber
from sentry_sdk.transport import Transport
from sentry_sdk.utils import event_from_exception

from db.errors import DomainError
from gateway.errors import database_unavailable
from gateway.settings import Settings

PACKAGE = "commerce-gateway"
FILTERED = "[Filtered]"
# Environment variables a build or platform sets to the commit being run.
COMMIT_VARIABLES = ("GIT_SHA", "GIT_COMMIT", "SOURCE_COMMIT", "SOURCE_VERSION", "K_REVISION")

# A key is sensitive if its normalised name (lower case, ``-`` as ``_``) contains one
# of these, or is one of the exact names below (too short or common to match inside
# other names: ``code`` is OAuth2's authorization code, ``key`` an API key).
SENSITIVE_FRAGMENTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "credential",
    "private_key",
    "assertion",
    "code_verifier",
    "session",
    "csrf",
    "xsrf",
    "signature",
    "dsn",
)
SENSITIVE_NAMES = frozenset(
    {"auth", "code", "key", "pwd", "pass", "jwt", "otp", "pin"}
    | {name.lower().replace("-", "_") for name in DEFAULT_DENYLIST + DEFAULT_PII_DENYLIST}
)
# Values shorter than this are not searched for elsewhere (they would match by chance).
MIN_SECRET_LENGTH = 6

_KEY_TEXT = (
    r"(?:[\w-]*(?:password|passwd|secret|token|api[_-]?key|credential|assertion|"
    r"code_verifier|session|signature)[\w-]*|code|key|auth|pwd|dsn)"
)
# Credentials in free text: a scheme and its credential, a JWT, an API key, and a
# sensitive ``key=value`` / ``"key": "value"`` pair (query strings, forms, JSON, log lines).
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?i)\b(bearer|basic|digest|token)(\s+)[\w.~+/=-]{4,}"), r"\1\2" + FILTERED),
    (re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*"), FILTERED),
    (re.compile(r"\bgwk_[\w-]+"), FILTERED),
    (
        re.compile(
            rf"(?i)(\b{_KEY_TEXT}\b[\"']?\s*[:=]\s*[\"']?)(?!{re.escape(FILTERED)})"
            r"([^\"'&;,\s}\]]+)"
        ),
        r"\1" + FILTERED,
    ),
]


def sensitive_key(key: str) -> bool:
    name = key.lower().replace("-", "_")
    return name in SENSITIVE_NAMES or any(fragment in name for fragment in SENSITIVE_FRAGMENTS)


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without the given secret values and without credential-looking parts."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, FILTERED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# A stack frame's source lines and names: code on disk, not data (patterns would mangle it).
_CODE_KEYS = frozenset(
    {"pre_context", "context_line", "post_context", "abs_path", "filename", "module", "function"}
)


def _scrub_strings(value: Any, secrets: Iterable[str] = ()) -> Any:
    """Every string inside ``value`` scrubbed (dict keys kept), in place where possible."""
    if isinstance(value, str):
        return scrub_text(value, secrets)
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in _CODE_KEYS:
                value[key] = _scrub_strings(item, secrets)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            value[index] = _scrub_strings(item, secrets)
    elif isinstance(value, AnnotatedValue):
        value.value = _scrub_strings(value.value, secrets)
    return value


def _sensitive_values(value: Any, under_sensitive: bool = False) -> Iterable[str]:
    """The string values under sensitive keys anywhere inside ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _sensitive_values(item, under_sensitive or sensitive_key(str(key)))
    elif isinstance(value, list):
        for item in value:
            yield from _sensitive_values(item, under_sensitive)
    elif under_sensitive and isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value)
        if len(text) >= MIN_SECRET_LENGTH:
            yield text


def _request_secrets(request: dict[str, Any]) -> set[str]:
    """The secret values a request carried where the event records it."""
    found: set[str] = set()
    query = request.get("query_string")
    if isinstance(query, str):
        found.update(_sensitive_values(dict(parse_qsl(query, keep_blank_values=True))))
    data = request.get("data")
    if isinstance(data, str | bytes):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError:
            data = dict(parse_qsl(data if isinstance(data, str) else data.decode("latin-1")))
    found.update(_sensitive_values(data))
    for name in ("headers", "cookies"):
        found.update(_sensitive_values(request.get(name)))
    return found


class Scrubber(EventScrubber):
    """sentry_sdk's scrubber, recursive, with fragment matching and value replacement."""

    def __init__(self) -> None:
        super().__init__(denylist=sorted(SENSITIVE_NAMES), recursive=True, pii_denylist=[])

    def scrub_dict(self, d: object) -> None:
        if not isinstance(d, dict):
            return
        for key, value in d.items():
            if isinstance(key, str) and sensitive_key(key):
                d[key] = AnnotatedValue.substituted_because_contains_sensitive_data()
            else:
                self.scrub_dict(value)
                self.scrub_list(value)

    def scrub_event(self, event: Any) -> None:
        request = event.get("request")
        secrets = _request_secrets(request) if isinstance(request, dict) else set()
        super().scrub_event(event)
        # Longest first, so a secret containing another is replaced whole.
        _scrub_strings(event, sorted(secrets, key=len, reverse=True))


def _expected(hint: dict[str, Any]) -> bool:
    """Whether the event is about an error the gateway answers as designed (not a 500)."""
    exc_info = hint.get("exc_info")
    return _expected_error(exc_info[1] if exc_info else None)


def _expected_error(error: BaseException | None) -> bool:
    if error is None:
        return False
    if isinstance(error, DomainError) and error.status < 500:
        return True
    if isinstance(error, SanicException) and error.status_code < 500:
        return True
    return database_unavailable(error) is not None


def before_send(event: Any, hint: dict[str, Any]) -> Any:
    """Drop expected errors; cut credential-looking text the key scrubber cannot see."""
    if _expected(hint):
        return None
    return _scrub_strings(event)


def before_breadcrumb(crumb: Any, hint: dict[str, Any]) -> Any:
    """A breadcrumb (a log record, an outgoing call) without secrets in its data or text."""
    data = crumb.get("data")
    if isinstance(data, dict):
        for key in list(data):
            if sensitive_key(str(key)):
                data[key] = FILTERED
    return _scrub_strings(crumb)


class SanicErrors(Integration):
    """Unhandled errors of Sanic handlers, with their request (see the module docstring)."""

    identifier = "sanic"

    @staticmethod
    def setup_once() -> None:
        # Once per process (the SDK's rule); the patch does nothing while Sentry is off.
        original = ErrorHandler.lookup

        def lookup(self: ErrorHandler, exception: Exception, route_name: str | None = None) -> Any:
            if sentry_sdk.get_client().get_integration(SanicErrors) is not None:
                _capture(exception)
            return original(self, exception, route_name)

        ErrorHandler.lookup = lookup  # type: ignore[method-assign]
        add_global_event_processor(_with_request)


def _capture(error: Exception) -> None:
    if _expected_error(error):  # before any work: most errors are a 404 or a 401
        return
    event, hint = event_from_exception(
        error,
        client_options=sentry_sdk.get_client().options,
        mechanism={"type": "sanic", "handled": False},
    )
    sentry_sdk.capture_event(event, hint=hint)


def _with_request(event: Any, hint: Any) -> Any:
    """Add the current request (if the event is built while one is handled)."""
    if "request" in event:
        return event
    try:
        request = Request.get_current()
    except SanicException:  # not inside a request
        return event
    try:  # the body (within MAX_REQUEST_BODY_SIZE), parsed as JSON or a form
        SanicRequestExtractor(request).extract_into_event(event)
    except Exception:  # a body that does not parse: report the error without it
        event["request"] = {}
    info = event.setdefault("request", {})
    info["url"] = f"{request.scheme}://{request.host}{request.path}"
    info["query_string"] = request.query_string
    info["method"] = request.method
    info["headers"] = dict(request.headers)  # the scrubber cuts the sensitive ones
    route = request.route
    if route is not None and not event.get("transaction"):
        event["transaction"] = str(route.name).removeprefix(f"{request.app.name}.")
    request_id = getattr(request.ctx, "request_id", None)
    if request_id:
        event.setdefault("tags", {})["request_id"] = request_id
    return event


def release_name(settings: Settings, environ: dict[str, str] | None = None) -> str:
    """``SENTRY_RELEASE``, else ``commerce-gateway@<version>`` (``+<commit>`` when the
    build says which, in ``GIT_SHA`` or the like)."""
    if settings.sentry_release:
        return settings.sentry_release
    environ = dict(os.environ) if environ is None else environ
    try:
        name = f"{PACKAGE}@{version(PACKAGE)}"
    except PackageNotFoundError:
        name = f"{PACKAGE}@unknown"
    commit = next((environ[v] for v in COMMIT_VARIABLES if environ.get(v)), None)
    return f"{name}+{commit[:12]}" if commit else name


def setup_sentry(
    settings: Settings,
    *,
    transport: Transport | type[Transport] | None = None,
    environ: dict[str, str] | None = None,
) -> bool:
    """Report unhandled errors to Sentry; whether it is on.

    ``transport`` replaces the HTTP one (tests capture envelopes in process); with it,
    no ``SENTRY_DSN`` is needed.
    """
    if not settings.sentry_dsn and transport is None:
        return False
    options: dict[str, Any] = {}
    if transport is not None:
        options["transport"] = transport
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        release=release_name(settings, environ),
        environment=settings.environment,
        integrations=[SanicErrors(), LoggingIntegration(level=None, event_level=logging.ERROR)],
        # Outgoing HTTP breadcrumbs would mix requests too (no scope per request).
        disabled_integrations=[StdlibIntegration()],
        auto_enabling_integrations=False,
        send_default_pii=False,
        event_scrubber=Scrubber(),
        before_send=before_send,
        before_breadcrumb=before_breadcrumb,
        traces_sample_rate=0.0,
        **options,
    )
    return True
