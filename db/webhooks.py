"""Webhook endpoints: where an organization wants its change-log events POSTed.

Declared once (``RESOURCE``), so REST ``/api/v1/webhook-endpoints``, GraphQL
``webhookEndpoints`` / ``createWebhookEndpoint`` / ``rotateSecretWebhookEndpoint``,
the real-time topic ``webhook-endpoints`` and the contract suites derive from it like
every resource. Managing endpoints needs ``webhooks:admin`` (owners and admins): an
endpoint receives every event of its topics, so whoever adds one reads them all.

Secrets follow the Standard Webhooks format (``whsec_`` + base64 of 32 random
bytes), made here, never chosen by clients. A secret is shown once: in the answer of
the create and of ``rotateSecret`` (``Resource.shown_once``); every read, list and
change-log snapshot has ``secret`` null, because the listing spec reads that column
as NULL (``ResourceSpec.masked``). A rotation keeps the previous secret signing for
``SECRET_OVERLAP``, so receivers can switch without losing a delivery.

The dispatcher (``realtime/webhooks``) reads and writes the rest of an endpoint's
state (cursor, failures, breaker) through ``db/webhook_delivery.py``; the delivery
log and the dead letters clients read are in ``db/webhook_log.py``.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import secrets
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
from pydantic import MISSING, AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError
from tortoise.expressions import F

from db import customers, models, orders, products, suppliers
from db.crud import Crud
from db.declare import POSITION, Action, Resource, list_spec
from db.errors import FieldError, InvalidArgument, LimitReached, NotFound, ValidationFailed
from db.events import head_position, writing
from db.filtering import parse_filter
from db.inputs import Input, Line, Text
from db.principal import Principal
from db.rows import change_row, create_row

SCOPE = "webhooks:admin"
SECRET_PREFIX = "whsec_"  # noqa: S105  (the format's prefix, not a secret)
SECRET_OVERLAP = timedelta(hours=24)  # how long a rotated-out secret keeps signing
MAX_TOPICS = 20
# Each enabled endpoint is a worker, a connection pool and a request per event: the
# cap bounds what one organization costs the installation (Stripe allows 16).
MAX_ENDPOINTS = 20  # per organization, enabled or not
Row = dict[str, Any]


def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


# -- what clients write ---------------------------------------------------------------------


def _loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# A host name as DNS spells it (IDNA already applied): labels of letters, digits and
# inner hyphens, dot-separated.
_HOST_NAME = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?")


def _sendable(value: str) -> None:
    """The dispatcher sends with httpx: a URL its parser refuses, or a host that is
    neither an IP address nor a DNS name, would fail at every delivery."""
    try:
        url = httpx.URL(value)
        host = url.raw_host.decode("ascii").lower()
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        raise PydanticCustomError("url_invalid", "not a URL: {why}", {"why": str(exc)}) from None
    if url.port == 0:
        raise PydanticCustomError("url_invalid", "port 0 is not a port to send to")
    try:
        ipaddress.ip_address(host.strip("[]"))
        return
    except ValueError:
        pass
    if len(host) > 253 or not _HOST_NAME.fullmatch(host):
        raise PydanticCustomError(
            "url_invalid", "'{host}' is neither an IP address nor a host name", {"host": host}
        )


def _check_url(value: str) -> str:
    """https, or http to a loopback host (a receiver on this machine); no credentials in
    the URL (they would be logged and shown back), no fragment (never sent)."""
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        parts.port  # noqa: B018  (a port that is not a number raises here)
    except ValueError as exc:
        raise PydanticCustomError("url_invalid", "not a URL: {why}", {"why": str(exc)}) from None
    if parts.scheme not in ("http", "https") or not host:
        raise PydanticCustomError(
            "url_invalid", "give an absolute https:// URL, e.g. https://hooks.example.com/in"
        )
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise PydanticCustomError(
            "url_userinfo", "a URL may not hold a user name or password; sign with the secret"
        )
    if parts.fragment or value.endswith("#"):
        raise PydanticCustomError("url_fragment", "a URL may not have a #fragment")
    if parts.scheme == "http" and not _loopback(host):
        raise PydanticCustomError(
            "url_insecure", "use https (http only to localhost, 127.0.0.0/8 or ::1)"
        )
    _sendable(value)
    return value


def topic_resources() -> dict[str, Resource]:
    """Topic name -> its resource: every declared resource (``db/catalog.py`` lists this
    module, so the declarations are named here again; tests/webhooks checks the two
    lists agree)."""
    declared = (
        orders.RESOURCE,
        customers.RESOURCE,
        products.RESOURCE,
        suppliers.RESOURCE,
        RESOURCE,
    )
    return {res.topic: res for res in declared}


def _check_topics(value: list[str]) -> list[str]:
    known = topic_resources()
    unknown = [name for name in value if name not in known]
    if unknown:
        raise PydanticCustomError(
            "unknown_topic",
            "unknown topic(s) {unknown}; topics are: {known}",
            {"unknown": ", ".join(unknown), "known": ", ".join(known)},
        )
    return list(dict.fromkeys(value))


Url = Annotated[Line, Field(min_length=1, max_length=2048), AfterValidator(_check_url)]
Topics = Annotated[
    list[Line],
    Field(min_length=1, max_length=MAX_TOPICS, description="Topic names, e.g. orders."),
    AfterValidator(_check_topics),
]
FilterText = Annotated[Line, Field(max_length=2000)]
Description = Annotated[Text, Field(max_length=500)]


class WebhookEndpointInput(Input):
    """A webhook endpoint as clients write it (create and full replace)."""

    url: Url
    topics: Topics
    filter: FilterText = ""
    description: Description = ""
    enabled: bool = True


class WebhookEndpointPatch(Input):
    """A partial update: the fields sent are changed, the others kept; none takes null."""

    description: Description | MISSING = MISSING
    url: Url | MISSING = MISSING
    topics: Topics | MISSING = MISSING
    filter: FilterText | MISSING = MISSING
    enabled: bool | MISSING = MISSING


# -- what clients read ----------------------------------------------------------------------


class WebhookEndpoint(BaseModel):
    id: int
    url: str = Field(description="Where events are POSTed (https; http only to loopback).")
    description: str
    topics: list[str] = Field(description="The topics whose events are sent, e.g. orders.")
    filter: str = Field(
        description="AIP-160 filter on the events' objects (as the topics' list filters); "
        "empty: every event of the topics."
    )
    enabled: bool = Field(description="Set true to resume an endpoint and clear its failures.")
    disabled_reason: str | None = Field(description="Why it was disabled, when it was.")
    disabled_at: datetime | None
    secret: str | None = Field(
        description="The signing secret (whsec_...): only in the answers of create and "
        "rotateSecret, null everywhere else. Keep it: it is not shown again."
    )
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the secret before the last rotation still signs too."
    )
    cursor: int = Field(
        description="The change-log position of the last event handled.",
        json_schema_extra=POSITION,
    )
    failing_since: datetime | None = Field(description="Failing without a success since.")
    version: int
    created_at: datetime
    updated_at: datetime


SPEC = list_spec(
    "webhook_endpoint",
    models.WebhookEndpoint,
    WebhookEndpoint,
    filter=("id", "url", "description", "enabled", "cursor", "created_at", "updated_at"),
    sort=("id", "url", "created_at", "updated_at"),
    json=("topics",),
    masked=("secret",),
)
CRUD = Crud(SPEC, "webhook_endpoints", scope=SCOPE)


def require_topic_reads(principal: Principal, topics: Sequence[str]) -> None:
    """``PERMISSION_DENIED`` unless the caller may read every topic: what an endpoint
    sends (and its dead letters keep) is those topics' data, so pointing it somewhere,
    rotating its secret, reading or replaying its dead letters needs their read scopes
    beside ``webhooks:admin``."""
    known = topic_resources()
    for name in topics:
        res = known.get(name)
        if res is not None:
            principal.require(res.read_scope)


async def endpoint_topics(principal: Principal, ident: int) -> list[str]:
    """The topics of the caller's endpoint ``ident`` (``NotFound`` if it has none such)."""
    found = await models.WebhookEndpoint.filter(
        id=ident, organization_id=principal.organization_id
    ).values_list("topics", flat=True)
    if not found:
        raise NotFound.for_resource(SPEC.name, ident)
    topics = found[0]
    return [str(t) for t in topics] if isinstance(topics, list) else []


def _check_filter(principal: Principal, text: str, topics: Sequence[str]) -> None:
    """The filter parses for every chosen topic's fields; the caller may read each topic."""
    known = topic_resources()
    for name in topics:
        res = known[name]
        principal.require(res.read_scope)
        try:
            parse_filter(text, res.spec.filterable)
        except InvalidArgument as error:
            problem = f"does not fit topic {name}: {error.detail}"
            raise ValidationFailed(
                f"the body is not valid: filter: {problem}",
                errors=[FieldError(("body", "filter"), problem, "invalid_filter")],
            ) from None


def _stored(values: dict[str, Any]) -> dict[str, Any]:
    """Public field names to model fields (``filter`` is ``event_filter`` in Python)."""
    if "filter" in values:
        values["event_filter"] = values.pop("filter")
    return values


def _now() -> datetime:
    return datetime.now(UTC)


async def create(principal: Principal, data: BaseModel) -> Row:
    """A new endpoint with a new secret (returned once); it gets the events recorded
    from now on (its cursor starts at the change log's head)."""
    principal.require(SCOPE)
    values = data.model_dump(mode="json")
    _check_filter(principal, values["filter"], values["topics"])
    secret = new_secret()
    values.update(secret=secret, cursor=await head_position())
    if not values["enabled"]:
        values.update(disabled_at=_now(), disabled_reason="disabled by a client")
    async with writing():
        # The organization's row, locked by a write that changes nothing: concurrent
        # creates count one after the other, so none passes the cap (SQLite has one writer).
        await models.Organization.filter(id=principal.organization_id).update(slug=F("slug"))
        count = await models.WebhookEndpoint.filter(
            organization_id=principal.organization_id
        ).count()
        if count >= MAX_ENDPOINTS:
            raise LimitReached(
                f"an organization has at most {MAX_ENDPOINTS} webhook endpoints; "
                "delete one it no longer needs first"
            )
        row = await create_row(principal, SPEC, _stored(values))
    return {**row, "secret": secret}


async def update(
    principal: Principal,
    ident: int,
    changes: BaseModel,
    *,
    expected_versions: Collection[int] | None = None,
) -> Row:
    """PATCH (the fields sent) or PUT. ``enabled`` true clears the failure state the
    dispatcher keeps (disabled, failing, breaker), so a fixed receiver starts afresh."""
    principal.require(SCOPE)
    sent = changes.model_dump(mode="json")
    current = await CRUD.get(principal, ident)
    require_topic_reads(principal, current["topics"])
    if "topics" in sent or "filter" in sent:
        topics = sent["topics"] if "topics" in sent else current["topics"]
        text = sent["filter"] if "filter" in sent else current["filter"]
        _check_filter(principal, text, topics)
    values = {key: value for key, value in sent.items() if current.get(key) != value}
    if sent.get("enabled") is True:
        state = await models.WebhookEndpoint.filter(id=ident).values(
            "consecutive_failures", "breaker_open_until"
        )
        if (
            current["disabled_at"] or current["disabled_reason"] or current["failing_since"]
        ) or any(s["consecutive_failures"] or s["breaker_open_until"] for s in state):
            values.update(
                enabled=True,
                disabled_reason=None,
                disabled_at=None,
                failing_since=None,
                consecutive_failures=0,
                breaker_open_until=None,
            )
    elif values.get("enabled") is False:
        values.update(disabled_at=_now(), disabled_reason="disabled by a client")
    return await change_row(
        principal, SPEC, ident, _stored(values), expected_versions=expected_versions
    )


async def rotate_secret(
    principal: Principal, ident: int, *, expected_versions: Collection[int] | None = None
) -> Row:
    """A new secret (returned once); the current one keeps signing beside it for
    ``SECRET_OVERLAP``. Conditional on the secret read, so two concurrent rotations
    cannot both keep the same previous secret (the second is refused: retry)."""
    principal.require(SCOPE)
    require_topic_reads(principal, await endpoint_topics(principal, ident))
    found = await models.WebhookEndpoint.filter(
        id=ident, organization_id=principal.organization_id
    ).values_list("secret", flat=True)
    if not found:
        raise NotFound.for_resource(SPEC.name, ident)
    previous, secret = str(found[0]), new_secret()
    values = {
        "secret": secret,
        "previous_secret": previous,
        "previous_secret_expires_at": _now() + SECRET_OVERLAP,
    }
    row = await change_row(
        principal,
        SPEC,
        ident,
        values,
        expected_versions=expected_versions,
        extra={"secret": previous},
    )
    return {**row, "secret": secret}


RESOURCE = Resource(
    name="webhook_endpoint",
    plural="webhook_endpoints",
    path="webhook-endpoints",
    scope=SCOPE,
    shown_once=("secret",),
    shape=WebhookEndpoint,
    spec=SPEC,
    list_rows=CRUD.list_rows,
    get=CRUD.get,
    by_ids=CRUD.by_ids,
    create=create,
    update=update,
    delete=CRUD.delete,
    create_input=WebhookEndpointInput,
    replace_input=WebhookEndpointInput,
    patch_input=WebhookEndpointPatch,
    description="Where the organization's change-log events are POSTed, signed "
    "(Standard Webhooks). Needs webhooks:admin (owners and admins).",
    actions=(
        Action(
            "rotateSecret",
            "Make a new signing secret, returned once in `secret`; the previous one keeps "
            "signing for 24 hours",
            rotate_secret,
        ),
    ),
    # Disabled: the suites that create it from this example need no receiver, and the
    # dispatcher leaves a disabled endpoint (its cursor) alone while they compare reads.
    example={"url": "https://hooks.example.com/gateway", "topics": ["orders"], "enabled": False},
    special="deliveries and dead letters: rest/webhooks.py, resolvers/webhooks.py",
)
