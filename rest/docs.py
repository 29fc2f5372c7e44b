"""The OpenAPI 3.1 document of REST v1, built from the routes as they are registered.

Each route states its operation once (``ApiDoc.operation``); component schemas
come from the pydantic models with ``#/components/schemas`` references, so the
document is valid without sanic-ext's schema generator (see docs/decisions.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from db.catalog import ALL_SCOPES, role_scopes
from db.listing import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from db.principal import SERVICE_ROLE
from rest.schemas import Problem

ERROR_TEXT = {
    400: "Invalid argument (query parameter, filter, page token, id) or malformed JSON or XML",
    401: "Missing or invalid credentials",
    403: "The credential lacks the scope this operation needs",
    404: "No such resource in your organization",
    406: "Accept admits none of the types this operation serves",
    409: "Conflict with the current state (duplicate, invalid transition, stock)",
    412: "If-Match does not match the current ETag",
    413: "Body larger than MAX_BODY_BYTES",
    415: "Body is neither JSON nor XML",
    422: "Body failed validation, or an Idempotency-Key was reused with another body",
}

LIST_PARAMS: list[dict[str, Any]] = [
    {
        "name": "filter",
        "in": "query",
        "schema": {"type": "string"},
        "description": "AIP-160 filter, e.g. `status = paid AND total_cents > 1000`.",
    },
    {
        "name": "order_by",
        "in": "query",
        "schema": {"type": "string"},
        "description": "Comma-separated fields, each optionally `asc`/`desc`, "
        "e.g. `created_at desc, id`.",
    },
    {
        "name": "page_size",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1},
        "description": f"Keyset page size: {DEFAULT_PAGE_SIZE} when left out, at most "
        f"{MAX_PAGE_SIZE} (unless the operator set PAGE_SIZE_DEFAULT / PAGE_SIZE_MAX).",
    },
    {
        "name": "page_token",
        "in": "query",
        "schema": {"type": "string"},
        "description": "Opaque token from `metadata.pagination.next_page_token`.",
    },
    {
        "name": "page",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1},
        "description": "Offset pagination: page number (reports totals).",
    },
    {
        "name": "per_page",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1},
        "description": "Offset pagination: page size.",
    },
    {
        "name": "fields",
        "in": "query",
        "schema": {"type": "string"},
        "description": "Field mask: comma-separated fields to return, e.g. `id,name`.",
    },
]

ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "schema": {"type": "string"},
    "description": "Apply only if the resource still has this ETag (else 412).",
}
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "schema": {"type": "string"},
    "description": "Answer 304 if the representation still has this ETag.",
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "schema": {"type": "string"},
    "description": "Retry-safe POST: a repeat with the same key and body "
    "returns the first response without a second write.",
}


# The scopes an API key can hold (its role's): an operation needing another one is
# not open to API keys, so its ``security`` does not offer them.
_API_KEY_SCOPES = role_scopes(SERVICE_ROLE)


def security(scope: str | None) -> list[dict[str, list[str]]]:
    """The credentials an operation accepts: an OAuth2 token (client credentials, or
    code + PKCE) with ``scope``, the same token pasted as a bearer, or an API key when
    a key can hold ``scope``. Swagger UI sends what was authorized only to operations
    that list its scheme; ``[]`` (no credential) is for ``PUBLIC_OPERATIONS`` alone."""
    accepted: list[dict[str, list[str]]] = [{"oauth2": [scope] if scope else []}, {"bearer": []}]
    if scope is None or scope in _API_KEY_SCOPES:
        accepted.append({"apiKey": []})
    return accepted


def scope_description(scope: str) -> str:
    resource, _, access = scope.partition(":")
    verb = {"read": "Read", "write": "Create, change and delete", "admin": "Administer"}
    return f"{verb.get(access, access.capitalize())} {resource.replace('-', ' ')}"


def envelope(data_schema: dict[str, Any], paginated: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "type": "object",
        "properties": {
            "request_id": {"type": "string"},
            "timestamp": {"type": "string", "format": "date-time"},
        },
        "required": ["request_id", "timestamp"],
    }
    if paginated:
        meta["properties"]["pagination"] = {"type": "object"}
    return {
        "type": "object",
        "properties": {"data": data_schema, "metadata": meta},
        "required": ["data", "metadata"],
    }


def ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json_reply(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_OAUTH_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    "required": ["error"],
}
_STATUS = {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]}
_TOKEN_FORM = {
    "type": "object",
    "required": ["grant_type"],
    "properties": {
        "grant_type": {
            "type": "string",
            "enum": ["client_credentials", "authorization_code", "refresh_token"],
        },
        "scope": {"type": "string", "description": "Space-separated scopes (optional)."},
        "client_id": {"type": "string", "description": "Without `Authorization: Basic`."},
        "client_secret": {"type": "string", "description": "Without `Authorization: Basic`."},
        "code": {"type": "string"},
        "redirect_uri": {"type": "string"},
        "code_verifier": {"type": "string", "description": "PKCE: the code's verifier."},
        "refresh_token": {"type": "string"},
    },
}
_TOKEN = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in"],
    "properties": {
        "access_token": {"type": "string"},
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "expires_in": {"type": "integer"},
        "scope": {"type": "string"},
        "refresh_token": {"type": "string"},
    },
}

# Operations anyone may call: ``security: []``. Those outside ``/api/v1`` carry their
# own ``servers`` (the gateway's root, per operation) when rendered; ``/openapi.json``, the document
# itself (``rest.PUBLIC_PATHS``), is under it.
PUBLIC_OPERATIONS: dict[str, dict[str, Any]] = {
    "/openapi.json": {
        "get": {
            "summary": "This OpenAPI document",
            "operationId": "get_openapi_document",
            "tags": ["public"],
            "responses": {"200": _json_reply("OpenAPI 3.1", {"type": "object"})},
            "security": [],
        }
    },
    "/livez": {
        "get": {
            "summary": "Liveness: the worker answers (touches no dependency)",
            "operationId": "get_liveness",
            "tags": ["public"],
            "responses": {"200": _json_reply("Alive", _STATUS)},
            "security": [],
        }
    },
    "/healthz": {
        "get": {
            "summary": "Liveness, by its former name (the same as /livez)",
            "operationId": "get_liveness_healthz",
            "tags": ["public"],
            "responses": {"200": _json_reply("Alive", _STATUS)},
            "security": [],
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: not draining; every worker, the database and Redis answer; "
            "the schema is current; the relay keeps up",
            "operationId": "get_readiness",
            "tags": ["public"],
            "responses": {
                "200": _json_reply("Ready", {**_STATUS, "additionalProperties": True}),
                "503": _json_reply("Not ready", {**_STATUS, "additionalProperties": True}),
            },
            "security": [],
        }
    },
    "/oauth/token": {
        "post": {
            "summary": "Get an access token (OAuth2 token endpoint)",
            "description": "The client authenticates itself (`Authorization: Basic` with "
            "its id and secret, or `client_id` and `client_secret` in the form; a public "
            "client sends only `client_id` and the PKCE `code_verifier`), so the "
            "operation needs no token. **Authorize** above runs these grants for you.",
            "operationId": "get_token",
            "tags": ["public"],
            "requestBody": {
                "required": True,
                "content": {"application/x-www-form-urlencoded": {"schema": _TOKEN_FORM}},
            },
            "responses": {
                "200": _json_reply("An access token (and, for sign-ins, a refresh token)", _TOKEN),
                "400": _json_reply("The grant was refused (OAuth2 error)", _OAUTH_ERROR),
                "401": _json_reply("The client failed to authenticate", _OAUTH_ERROR),
                "429": {
                    "description": "Too many requests from this client",
                    "content": {"application/problem+json": {"schema": ref(Problem)}},
                },
            },
            "security": [],
        }
    },
}
API_BASE = "/api/v1"
_UNDER_API_BASE = frozenset({"/openapi.json"})


@dataclass
class ApiDoc:
    title: str
    version: str
    paths: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: set[type[BaseModel]] = field(default_factory=lambda: {Problem})

    def operation(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        operation_id: str,
        tag: str,
        response: dict[str, Any] | None,
        status: int = 200,
        params: list[dict[str, Any]] | None = None,
        body: type[BaseModel] | None = None,
        errors: tuple[int, ...] = (),
        scope: str | None = None,
        models: tuple[type[BaseModel], ...] = (),
        csv: bool = False,
    ) -> None:
        """Record one operation; ``path`` is in OpenAPI form (``/customers/{id}``).

        Every operation also answers XML (``rest.xml``'s mapping of the same schema);
        ``csv`` marks a list that exports as ``text/csv`` (``rest.csv_export``)."""
        self.models.update(models)
        responses: dict[str, Any] = {}
        if response is None:
            responses[str(status)] = {"description": "Done"}
        else:
            content: dict[str, Any] = {
                "application/json": {"schema": response},
                "application/xml": {"schema": response},
            }
            if csv:
                content["text/csv"] = {"schema": {"type": "string"}}
            responses[str(status)] = {"description": "Success", "content": content}
        if method == "get":
            responses["304"] = {"description": "Not modified (If-None-Match)"}
        for code in sorted({401, 403, 406, *errors}):
            responses[str(code)] = {
                "description": ERROR_TEXT.get(code, "Error"),
                "content": {
                    "application/problem+json": {"schema": ref(Problem)},
                    "application/problem+xml": {"schema": ref(Problem)},
                },
            }
        op: dict[str, Any] = {
            "summary": summary,
            "operationId": operation_id,
            "tags": [tag],
            "parameters": list(params or []),
            "responses": responses,
            "security": security(scope),
        }
        if scope:
            op["description"] = f"Requires the `{scope}` scope."
        if body is not None:
            self.models.add(body)
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": ref(body)},
                    "application/xml": {"schema": ref(body)},
                },
            }
        self.paths.setdefault(path, {})[method] = op

    def render(self, servers: list[dict[str, str]]) -> dict[str, Any]:
        scopes = {scope: scope_description(scope) for scope in sorted(ALL_SCOPES)}
        _, schema = models_json_schema(
            [(m, "validation") for m in sorted(self.models, key=lambda m: m.__name__)],
            ref_template="#/components/schemas/{model}",
        )
        # The gateway's root, for the public operations outside the API's base path.
        root = {"url": servers[0]["url"].removesuffix(API_BASE) or "/"}
        public = {
            path: ops
            if path in _UNDER_API_BASE
            else {method: {**op, "servers": [root]} for method, op in ops.items()}
            for path, ops in PUBLIC_OPERATIONS.items()
        }
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version},
            "servers": servers,
            "paths": {**self.paths, **public},
            "components": {
                "schemas": schema.get("$defs", {}),
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                    "oauth2": {
                        "type": "oauth2",
                        "description": "Client credentials for integrators; authorization "
                        "code with PKCE (S256) for people signing in through a page.",
                        "flows": {
                            "clientCredentials": {"tokenUrl": "/oauth/token", "scopes": scopes},
                            "authorizationCode": {
                                "authorizationUrl": "/oauth/authorize",
                                "tokenUrl": "/oauth/token",
                                "refreshUrl": "/oauth/token",
                                "scopes": scopes,
                            },
                        },
                    },
                },
            },
        }
