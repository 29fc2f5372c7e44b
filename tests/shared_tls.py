"""One TLS context for every httpx client of a test run.

httpx builds a new ``ssl.SSLContext`` for each client, loading certifi's CA bundle
each time (tens of milliseconds of CPU); the tests make thousands of clients (each
``httpx.get`` is one), nearly all for plain http on 127.0.0.1. The default context
(``verify=True``, no client certificate) is built once per CA setting and shared,
with the same verification; any other ``verify`` or ``cert`` is built as httpx does.
``tests/conftest.py`` installs it for the session (test clients and the in-process
server's own, such as the JWKS fetches, alike).
"""

from __future__ import annotations

import os
import ssl
from typing import Any

from httpx._transports import default as transports

_build = transports.create_ssl_context
_built: dict[tuple[bool, str | None, str | None], ssl.SSLContext] = {}


def _shared(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
    if verify is not True or cert:
        return _build(verify=verify, cert=cert, trust_env=trust_env)
    key = (
        trust_env,
        os.environ.get("SSL_CERT_FILE") if trust_env else None,
        os.environ.get("SSL_CERT_DIR") if trust_env else None,
    )
    if key not in _built:
        _built[key] = _build(verify=True, cert=None, trust_env=trust_env)
    return _built[key]


def install() -> None:
    transports.create_ssl_context = _shared  # type: ignore[assignment]
