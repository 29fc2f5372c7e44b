"""Response schemas of REST v1, used to document the API (responses are not re-validated)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class SalesBucket(BaseModel):
    start: datetime
    order_count: int
    revenue_cents: int


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
