"""One OpenAPI document for the gateway, merged from the four services' own documents.

It is committed as nginx/openapi.json (served by nginx as a static file in every mode) and a
test fails when it no longer matches the services, so it cannot drift."""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

from fastapi import FastAPI

from .render import OPENAPI_FILE


def service_apps() -> list[FastAPI]:
    from conversation_service.app import create_app as conversation
    from identity_service.app import create_app as identity
    from learning_service.app import create_app as learning
    from recommendation_service.app import create_app as recommendation

    return [identity(), conversation(), recommendation(), learning()]


# What the gateway itself answers on the API's locations (nginx/templates/gateway.conf.template),
# in front of any service: API.md's 413 for a body over 64 KiB and 429 for a rate limit
# (nginx's per token or per client address, or identity's per account), both as JSON.
API_PREFIX = "/api/v1/v5/"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
GATEWAY_ERROR_SCHEMA: dict[str, Any] = {
    "properties": {"detail": {"type": "string", "title": "Detail"}},
    "type": "object",
    "required": ["detail"],
    "title": "GatewayError",
}
_GATEWAY_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/GatewayError"}}}
_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 0}}
}


def _add_gateway_responses(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    if "requestBody" in operation:
        responses.setdefault(
            "413", {"description": "request body over 64 KiB", "content": _GATEWAY_ERROR}
        )
    responses.setdefault(
        "429",
        {"description": "rate limited", "headers": _RETRY_AFTER, "content": _GATEWAY_ERROR},
    )


def merge_openapi(documents: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {
        "openapi": documents[0]["openapi"] if documents else "3.1.0",
        "info": {
            "title": "V5 adaptive music recommendation API",
            "version": "1.0.0",
            "description": "Every public operation, served through the gateway.",
        },
        "paths": {
            "/healthz": {
                "get": {
                    "summary": "Gateway health",
                    "operationId": "gateway_healthz",
                    "tags": ["gateway"],
                    "responses": {"200": {"description": "The gateway answers"}},
                }
            }
        },
        "components": {"schemas": {}, "securitySchemes": {}},
    }
    for doc in documents:
        for path, item in doc.get("paths", {}).items():
            if path in merged["paths"]:
                raise ValueError(f"two services both declare {path}")
            merged["paths"][path] = copy.deepcopy(item)
        components = doc.get("components", {})
        for kind in ("schemas", "securitySchemes"):
            for name, schema in components.get(kind, {}).items():
                known = merged["components"][kind].get(name)
                if known is not None and known != schema:
                    raise ValueError(f"two services define {kind} {name} differently")
                merged["components"][kind][name] = schema
    for path, item in merged["paths"].items():
        if path.startswith(API_PREFIX):
            for method, operation in item.items():
                if method in HTTP_METHODS:
                    _add_gateway_responses(operation)
            merged["components"]["schemas"]["GatewayError"] = GATEWAY_ERROR_SCHEMA
    merged["paths"] = dict(sorted(merged["paths"].items()))
    for kind in ("schemas", "securitySchemes"):
        merged["components"][kind] = dict(sorted(merged["components"][kind].items()))
    return merged


def gateway_openapi() -> dict[str, Any]:
    return merge_openapi([app.openapi() for app in service_apps()])


def render_openapi() -> str:
    return json.dumps(gateway_openapi(), indent=2, sort_keys=False) + "\n"


def write_or_check_openapi(*, check: bool) -> int:
    text = render_openapi()
    if check:
        current = OPENAPI_FILE.read_text() if OPENAPI_FILE.exists() else ""
        if current != text:
            print(f"{OPENAPI_FILE} is out of date: run `make openapi`", file=sys.stderr)
            return 1
        print(f"{OPENAPI_FILE} is up to date")
        return 0
    OPENAPI_FILE.write_text(text)
    print(f"wrote {OPENAPI_FILE}")
    return 0
