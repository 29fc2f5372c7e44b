"""Response schemas of REST v1, used to document the API (responses are not re-validated)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class SalesBucket(BaseModel):
    start: datetime
    order_count: int
    revenue_cents: int


class StatusCount(BaseModel):
    status: str
    count: int


class MinuteBucket(BaseModel):
    start: datetime
    order_count: int


class OrderActivity(BaseModel):
    """The live dashboard's numbers (GraphQL ``orderActivity``), as of a stream position."""

    position: int = Field(description="The change log's head these numbers are as of.")
    as_of: datetime
    orders_today: int = Field(description="Orders created since 00:00 UTC, cancelled ones too.")
    revenue_today_cents: int = Field(
        description="The total of today's orders that were paid (paid, shipped, delivered)."
    )
    status_counts: list[StatusCount] = Field(description="Every status, zeros too.")
    per_minute: list[MinuteBucket] = Field(
        description="Orders created in each of the last `minutes` UTC minutes, the current last."
    )


class FieldProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None
    errors: list[FieldProblem] | None = None


class ApiKey(BaseModel):
    id: int
    key_id: str = Field(description="public part of the key (gwk_<key_id>_...)")
    name: str
    scopes: list[str] = Field(description="what the key may do (as written when created)")
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewApiKey(ApiKey):
    key: str = Field(description="the key itself: shown only in this response")
