"""Rate limits on every door: which limit a request spends, under which key.

=============  ===============================================  ==========================
limit          what spends it                                   key
=============  ===============================================  ==========================
read           REST GET/HEAD (SSE streams included)             the credential
write          REST POST/PUT/PATCH/DELETE                       the credential
graphql        every GraphQL operation, its estimated cost      the credential
               (``resolvers.limits``; at least 1), over HTTP
               and WebSocket alike
token          ``/oauth/token``, revoke, introspect             the OAuth client (or the
                                                                address when none is named)
auth-failures  a credential that was refused (bad token, API    the client address
               key or client secret)
sign-in        a sign-in attempt (refunded when it succeeds)    address and email, and
                                                                address alone (x10)
ws-connect     a WebSocket upgrade, any protocol                the client address
ws-messages    a message on an open socket                      the connection
=============  ===============================================  ==========================

The credential is the caller's organization and subject (an OAuth client, a user,
an API key). Client addresses come from ``gateway.edge.client_address``, which
believes ``X-Forwarded-For`` only from ``TRUSTED_PROXIES``. Rates come from the
``RATE_LIMIT_*`` settings; ``RATE_LIMIT_OVERRIDES`` gives a client, an API key or a
role its own (the most specific wins: client or key, then the most generous of the
caller's roles). Every limited response carries ``RateLimit-Policy`` and
``RateLimit``; a refusal is a 429 problem (``RATE_LIMITED``) with ``Retry-After``.
Counts are shared through Redis (``gateway.ratelimit``), per worker without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from db.errors import InvalidToken
from gateway import metrics
from gateway.edge import client_address
from gateway.errors import RateLimited
from gateway.ratelimit import Decision, LeasedLimiter, Rate, RateLimiter

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sanic import Request

    from db.principal import Principal
    from gateway.auth import Authenticator
    from gateway.settings import Settings

# Addresses whose refused credentials used up their limit are refused in this worker
# without checking anything more (no token verification, no API key lookup) until
# the limit says they may try again.
MAX_BLOCKED = 100_000
SIGN_IN_ADDRESS_FACTOR = 10


READS = frozenset({"GET", "HEAD", "OPTIONS"})


def credential_key(principal: Principal) -> str:
    return f"{principal.organization_id}:{principal.subject}"


def http_policy(method: str) -> str:
    return "read" if method in READS else "write"


class Throttle:
    """The gateway's rate limits, one per worker (``app.ctx.throttle``)."""

    def __init__(
        self,
        settings: Settings,
        redis: Redis | None,
        auth: Authenticator,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.auth = auth
        self.enabled = settings.rate_limits_enabled
        self.clock = clock
        self.limiter = RateLimiter(redis, clock=clock)
        self.leased = LeasedLimiter(self.limiter)
        self.rates = {
            "read": Rate.parse(settings.rate_limit_read),
            "write": Rate.parse(settings.rate_limit_write),
            "graphql": Rate.parse(settings.rate_limit_graphql),
            "token": Rate.parse(settings.rate_limit_token),
            "auth-failures": Rate.parse(settings.rate_limit_auth_failures),
            "ws-connect": Rate.parse(settings.rate_limit_ws_connect),
            "ws-messages": Rate.parse(settings.rate_limit_ws_messages),
            "sign-in": Rate(limit=settings.login_attempts_per_minute, period=60.0),
            "sign-in-address": Rate(
                limit=settings.login_attempts_per_minute * SIGN_IN_ADDRESS_FACTOR, period=60.0
            ),
        }
        self.overrides = {
            who: {policy: Rate.parse(rate) for policy, rate in rates.items()}
            for who, rates in settings.rate_limit_overrides.items()
        }
        self._blocked: dict[str, float] = {}

    def rate(self, policy: str, principal: Principal | None = None) -> Rate:
        """The rate of ``policy`` for this caller (see the module docstring)."""
        if principal is not None and self.overrides:
            # subjects are "client:<id>", "api-key:<id>" or "user:<id>"
            found = self.overrides.get(principal.subject, {}).get(policy)
            if found is not None:
                return found
            by_role = [
                rate
                for role in principal.roles
                if (rate := self.overrides.get(f"role:{role}", {}).get(policy)) is not None
            ]
            if by_role:
                return max(by_role, key=lambda r: r.limit / r.period)
        return self.rates[policy]

    async def charge(
        self,
        request: Request | None,
        policy: str,
        key: str,
        *,
        cost: int = 1,
        principal: Principal | None = None,
        exact: bool = False,
    ) -> Decision | None:
        """Spend ``cost`` of ``key``'s ``policy``; raise ``RateLimited`` when it is gone.

        The decision goes on ``request.ctx.rate_limit`` so the response carries its
        fields. ``exact`` skips leases (for limits of a few per minute).
        """
        if not self.enabled:
            return None
        rate = self.rate(policy, principal)
        limiter = self.limiter if exact else self.leased
        decision = await limiter.hit(policy, key, rate, cost)
        if request is not None:
            request.ctx.rate_limit = decision
        if not decision.allowed:
            raise refusal(decision)
        return decision

    async def charge_caller(
        self, request: Request | None, policy: str, principal: Principal, cost: int = 1
    ) -> Decision | None:
        return await self.charge(
            request, policy, credential_key(principal), cost=cost, principal=principal
        )

    async def authenticate(self, request: Request, policy: str | None = "http") -> Principal:
        """The request's caller (``gateway.auth``), with its limits applied.

        An address that keeps sending refused credentials is refused before its next
        credential is even checked. ``policy`` is what the request spends once the
        caller is known: ``"http"`` for read or write by its method, ``None`` when
        the door charges by itself (GraphQL charges its cost once it knows it).
        """
        self.check_address(request)
        try:
            principal = await self.auth.authenticate(request)
        except InvalidToken:
            await self.credential_refused(request)
            raise
        request.ctx.principal = principal
        if policy is not None:
            await self.charge_caller(
                request, http_policy(request.method) if policy == "http" else policy, principal
            )
        return principal

    # -- refused credentials -------------------------------------------------------

    def check_address(self, request: Request) -> None:
        """Refuse at once an address whose refused credentials used up its limit."""
        if not self.enabled or not self._blocked:
            return
        address = client_address(request)
        until = self._blocked.get(address)
        if until is None:
            return
        now = self.clock()
        if now >= until:
            del self._blocked[address]
            return
        rate = self.rates["auth-failures"]
        metrics.rate_limited("auth-failures")
        raise RateLimited(
            "too many refused credentials from this address; try again later",
            retry_after=until - now,
            headers=Decision(
                False, "auth-failures", rate.limit, rate.period, 0, 0.0, until - now
            ).headers(),
        )

    async def credential_refused(self, request: Request) -> None:
        """Count a refused credential against the client's address (then the 401 goes
        out, or a 429 once the address has used up its limit)."""
        if not self.enabled:
            return
        address = client_address(request)
        rate = self.rates["auth-failures"]
        decision = await self.limiter.hit("auth-failures", address, rate)
        if not decision.allowed:
            if len(self._blocked) >= MAX_BLOCKED:
                now = self.clock()
                self._blocked = {a: t for a, t in self._blocked.items() if t > now}
            if len(self._blocked) < MAX_BLOCKED:
                self._blocked[address] = self.clock() + decision.retry_after
            request.ctx.rate_limit = decision
            raise refusal(decision, "too many refused credentials from this address")

    # -- the OAuth endpoints and sign-in -------------------------------------------------

    async def charge_oauth(self, request: Request, client_id: str | None) -> None:
        """Spend one ``token`` unit of the client the request names (``/oauth/token``,
        revoke, introspect), or of its address when it names none. An address whose
        refused credentials used up their limit is refused first."""
        self.check_address(request)
        key = f"client:{client_id}" if client_id else f"address:{client_address(request)}"
        await self.charge(request, "token", key, exact=True)

    async def begin_sign_in(self, request: Request, email: str) -> SignIn:
        """Spend one sign-in attempt of the address and of the address with this email,
        *before* the password is checked, so that concurrent guesses cannot all get
        through (raise ``RateLimited`` when either is used up). ``SignIn.succeeded``
        gives both back: only failures count. Always on: ``RATE_LIMITS_ENABLED`` does not
        turn off this guard against password guessing."""
        address = client_address(request)
        attempt = SignIn(self.limiter, address, f"{address}|{email}", self.rates)
        address_decision = await self.limiter.hit(
            "sign-in", attempt.address_key, attempt.address_rate
        )
        if not address_decision.allowed:
            raise refusal(address_decision, "too many sign-in attempts from this address")
        email_decision = await self.limiter.hit("sign-in", attempt.email_key, attempt.email_rate)
        if not email_decision.allowed:
            # nothing was checked: the address gets its attempt back
            await self.limiter.refund("sign-in", attempt.address_key, attempt.address_rate)
            raise refusal(email_decision, "too many sign-in attempts for this email")
        return attempt

    async def charge_upgrade(self, request: Request) -> None:
        """Spend one ``ws-connect`` of the client's address on a WebSocket upgrade, on
        every socket path, before the upgrade happens (a refusal is an HTTP 429 the
        client can read)."""
        await self.charge(request, "ws-connect", client_address(request), exact=True)

    def message_budget(self, principal: Principal | None = None) -> MessageBudget:
        """A new socket's budget of messages (``ws-messages``)."""
        return MessageBudget(self.rate("ws-messages", principal) if self.enabled else None)


class SignIn:
    """One sign-in attempt that was allowed (``Throttle.begin_sign_in``)."""

    def __init__(
        self, limiter: RateLimiter, address: str, email_key: str, rates: dict[str, Rate]
    ) -> None:
        self.limiter = limiter
        self.address_key = f"address:{address}"
        self.email_key = f"email:{email_key}"
        self.address_rate = rates["sign-in-address"]
        self.email_rate = rates["sign-in"]

    async def succeeded(self) -> None:
        """The password was right: the attempt does not count."""
        await self.limiter.refund("sign-in", self.email_key, self.email_rate)
        await self.limiter.refund("sign-in", self.address_key, self.address_rate)


class MessageBudget:
    """One socket's messages per second: GCRA on the connection alone (a socket lives
    on one worker, so nothing is shared). Over it, the socket gets an error frame and
    is closed with 1008 (policy violation; ``realtime.close_codes.RATE_LIMITED``)."""

    def __init__(self, rate: Rate | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self._tat = 0.0

    def spend(self) -> float:
        """0 when one more message is within the budget, else seconds until it would be."""
        rate = self.rate
        if rate is None:
            return 0.0
        now = self.clock()
        interval = rate.period / rate.limit
        tat = max(self._tat, now)
        allow_at = tat + interval - rate.period
        if now < allow_at:
            return allow_at - now
        self._tat = tat + interval
        return 0.0

    def refusal(self, retry_after: float) -> RateLimited:
        rate = self.rate
        assert rate is not None
        metrics.rate_limited("ws-messages")
        return RateLimited(
            f"more than {rate.limit} messages per {rate.period:g} s on this socket; "
            "the socket is closed (1008): reconnect and resume",
            retry_after=retry_after,
        )


def refusal(decision: Decision, what: str | None = None) -> RateLimited:
    metrics.rate_limited(decision.policy)
    return RateLimited(
        f"{what or f'over the {decision.policy!r} rate limit'}: "
        f"at most {decision.limit} per {decision.period:g} s; try again later",
        retry_after=decision.retry_after,
        headers=decision.headers(),
    )
