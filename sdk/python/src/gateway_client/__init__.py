"""Python client for the commerce gateway: typed, sync and async, retrying, resumable.

from gateway_client import Client
with Client("http://127.0.0.1:8000", client_id="...", client_secret="...") as gw:
    for order in gw.orders.list(filter=OrderFields.status == "paid"):
        print(order.id, order.total_cents, order.meta.request_id)
"""

from gateway_client._base import ApiModel, Done, InputModel, ItemList, Page, RateLimit, ResponseMeta
from gateway_client._core import AuthFlow, RetryInfo, RetryPolicy
from gateway_client.auth import ApiKey, BearerToken, ClientCredentials
from gateway_client.client import DEFAULT_LIMITS, DEFAULT_TIMEOUT, AsyncClient, Client
from gateway_client.errors import (
    ApiError,
    Conflict,
    ConnectionFailed,
    DatabaseUnavailable,
    FieldIssue,
    GatewayError,
    IdempotencyKeyReused,
    InsufficientStock,
    InvalidArgument,
    InvalidTransition,
    LimitReached,
    NotFound,
    PagingError,
    PermissionDenied,
    PreconditionFailed,
    RateLimited,
    ResyncRequired,
    ServerError,
    StreamEnded,
    Unauthenticated,
    Unavailable,
    UnexpectedResponse,
    ValidationFailed,
)
from gateway_client.filters import Filter, all_of, any_of
from gateway_client.paging import AsyncPager, Pager
from gateway_client.realtime import AsyncEventStream, ChangeEvent, EventStream

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "ApiError",
    "ApiKey",
    "ApiModel",
    "AsyncClient",
    "AsyncEventStream",
    "AsyncPager",
    "AuthFlow",
    "BearerToken",
    "ChangeEvent",
    "Client",
    "ClientCredentials",
    "Conflict",
    "ConnectionFailed",
    "DatabaseUnavailable",
    "Done",
    "EventStream",
    "FieldIssue",
    "Filter",
    "GatewayError",
    "IdempotencyKeyReused",
    "InputModel",
    "InsufficientStock",
    "InvalidArgument",
    "InvalidTransition",
    "ItemList",
    "LimitReached",
    "NotFound",
    "Page",
    "Pager",
    "PagingError",
    "PermissionDenied",
    "PreconditionFailed",
    "RateLimit",
    "RateLimited",
    "ResponseMeta",
    "ResyncRequired",
    "RetryInfo",
    "RetryPolicy",
    "ServerError",
    "StreamEnded",
    "Unauthenticated",
    "Unavailable",
    "UnexpectedResponse",
    "ValidationFailed",
    "all_of",
    "any_of",
]
