"""Which representations a REST client accepts (``Accept``, RFC 9110 12.5.1).

REST v1 answers JSON (and problem documents as ``application/problem+json``). A
request whose ``Accept`` admits neither (``Accept: application/xml`` only, or every
admitted type at ``q=0``) is 406 ``NOT_ACCEPTABLE``, rather than JSON the client said
it cannot read. No ``Accept``, ``*/*`` and ``application/*`` mean JSON.

Parsing is linear in the header (bounded by the request head limit) and cached per
distinct value in a small LRU, so a busy client costs one dictionary lookup.
"""

from __future__ import annotations

from functools import lru_cache

from db.errors import DomainError

SUPPORTED = ("application/json", "application/problem+json")


class NotAcceptable(DomainError):
    code = "NOT_ACCEPTABLE"
    status = 406
    title = "Not acceptable"


@lru_cache(maxsize=256)
def accepts_json(accept: str) -> bool:
    """Whether the ``Accept`` header value admits ``application/json`` (what every
    success is; a problem document is sent whatever ``Accept`` says, RFC 9457)."""
    if not accept.strip():
        return True
    best: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = part.split(";")
        media = media.strip().lower()
        if not media:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        # The most specific range decides (RFC 9110 12.5.1): remember each one's q.
        best[media] = q
    for candidate in ("application/json", "application/*", "*/*"):
        if candidate in best:  # the most specific range present decides
            return best[candidate] > 0
    return False


def check_accept(accept: str | None) -> None:
    """Raise ``NotAcceptable`` unless ``accept`` admits JSON."""
    if accept is None or accept == "application/json" or accept == "*/*":
        return
    if not accepts_json(accept):
        raise NotAcceptable(
            f"this API answers {' or '.join(SUPPORTED)}; the Accept header admits neither",
        )
