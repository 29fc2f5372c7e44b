"""How real-time connections end: every close code the gateway sends, in one table.

WebSocket channels close with the code; SSE sends a last ``event: close`` with
``{"code", "reason"}``; graphql-sse and multipart subscriptions end with an error
whose ``extensions`` carry ``{"code": <name>, "close": <code>}``. The README's table
of close codes and the AsyncAPI document's description are rendered from
``TABLE`` (``markdown_table``, ``descriptions``); tests hold the README to it.

A ``CloseCode`` is a row of that table (code, stable name, when, what to do); a
``Close`` is one close frame the code sends (code and reason): several frames may
share a row (4403 for refused and for revoked credentials).

realtime/ raises one exception of its own: a closed mailbox raises
``realtime.hub.MailboxClosed`` (a ``Close``'s code and reason) in whoever reads it,
and the door ends its connection with that frame. Refused messages and requests
raise the domain's and the HTTP edge's errors (``db.errors``, ``gateway.errors``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class CloseCode:
    code: int
    name: str  # stable, in payloads that carry the close (empty: none is sent)
    when: str
    todo: str


SHUTTING_DOWN = CloseCode(
    1001,
    "SHUTTING_DOWN",
    "the server is shutting down",
    "reconnect (any worker or host) and resume",
)
SLOW_CONSUMER_CODE = CloseCode(
    1013,
    "SLOW_CONSUMER",
    "the connection fell `REALTIME_QUEUE_LIMIT` live events behind",
    "reconnect and resume",
)
UNAVAILABLE = CloseCode(
    1013,
    "UNAVAILABLE",
    "the database is away: a catch-up could not read the change log, or checking a key or "
    "starting a subscription needed it",
    "reconnect and resume",
)
EXPIRED = CloseCode(
    4401,
    "TOKEN_EXPIRED",
    "token expired (on the JSON channel also: a message before `auth`)",
    "renew the token, reconnect and resume",
)
REVOKED = CloseCode(
    4403,
    "TOKEN_REVOKED",
    "credentials refused or revoked (within a second on every worker and host; within a "
    "few seconds while Redis is away, see [Authentication](#authentication))",
    "get new credentials",
)
AUTH_TIMEOUT = CloseCode(
    4408,
    "",
    "no `auth` / `connection_init` within `REALTIME_AUTH_TIMEOUT_SECONDS` of the upgrade "
    "(pings do not extend it)",
    "authenticate at once",
)
RESYNC_REQUIRED = CloseCode(
    4410,
    "RESYNC_REQUIRED",
    "the log was pruned past your position during the catch-up",
    "reload, then subscribe without a position",
)
RATE_LIMITED = CloseCode(
    1008,
    "RATE_LIMITED",
    "over a rate limit (messages per socket, or GraphQL cost)",
    "wait `Retry-After`, reconnect and resume",
)

TABLE = (
    SHUTTING_DOWN,
    SLOW_CONSUMER_CODE,
    UNAVAILABLE,
    EXPIRED,
    REVOKED,
    AUTH_TIMEOUT,
    RESYNC_REQUIRED,
    RATE_LIMITED,
)

NORMAL = 1000  # ended by either side as asked (unsubscribed, socket closed): no row


class Close(NamedTuple):
    """A close frame: ``ws.close(*frame)``."""

    code: int
    reason: str


GOING_AWAY = Close(SHUTTING_DOWN.code, "server shutting down: reconnect and resume")
SLOW_CONSUMER = Close(
    SLOW_CONSUMER_CODE.code, "slow consumer: reconnect and resume from your last position"
)
LOG_UNAVAILABLE = Close(UNAVAILABLE.code, "the change log is unavailable: reconnect and resume")
# Any other step that needed the database while it was away (a key checked at the
# upgrade or in ``auth``/``connection_init``, the start of a catch-up).
DATABASE_AWAY = Close(UNAVAILABLE.code, "database unavailable: reconnect and resume")
TOKEN_EXPIRED = Close(EXPIRED.code, "token expired")
NOT_AUTHENTICATED = Close(EXPIRED.code, "authenticate first")
TOKEN_REVOKED = Close(REVOKED.code, "token revoked")
RESYNC = Close(
    RESYNC_REQUIRED.code,
    "resync required: the resume position is no longer kept; reload, then resume",
)
# Refused credentials close with REVOKED.code and the refusal's own detail as reason;
# a missed deadline with AUTH_TIMEOUT.code (realtime.admission); a socket over its
# message budget with RATE_LIMITED.code, after an error frame.

_ROWS: dict[Close, CloseCode] = {
    GOING_AWAY: SHUTTING_DOWN,
    SLOW_CONSUMER: SLOW_CONSUMER_CODE,
    LOG_UNAVAILABLE: UNAVAILABLE,
    DATABASE_AWAY: UNAVAILABLE,
    TOKEN_EXPIRED: EXPIRED,
    NOT_AUTHENTICATED: EXPIRED,
    TOKEN_REVOKED: REVOKED,
    RESYNC: RESYNC_REQUIRED,
}
_MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")
_FIRST_BY_CODE: dict[int, CloseCode] = {}
for _row in TABLE:
    _FIRST_BY_CODE.setdefault(_row.code, _row)


def close_name(code: int, reason: str) -> str:
    """The stable name of a close (by its code alone when the reason is not one of ours)."""
    row = _ROWS.get(Close(code, reason)) or _FIRST_BY_CODE.get(code)
    return row.name if row is not None and row.name else "CLOSED"


def markdown_table() -> str:
    """The README's table of close codes."""
    lines = ["| code | name | when | what to do |", "|---|---|---|---|"]
    for row in TABLE:
        name = f" `{row.name}` " if row.name else " "
        lines.append(f"| {row.code} |{name}| {row.when} | {row.todo} |")
    return "\n".join(lines)


def descriptions() -> dict[str, str]:
    """Each close code with what it means and what to do (AsyncAPI), rows of one code joined."""
    found: dict[str, list[str]] = {}
    for row in TABLE:
        text = _MARKDOWN_LINK.sub(r"\1", f"{row.when}: {row.todo}").replace("`", "")
        found.setdefault(str(row.code), []).append(text)
    return {code: "; or ".join(texts) for code, texts in found.items()}
