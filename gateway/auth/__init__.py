"""One authentication for every door: OAuth2 server, JWT access tokens, API keys."""

from gateway.auth.authenticator import Authenticator

__all__ = ["Authenticator"]
