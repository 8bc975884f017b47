"""One reading of a JSON request body for every service: RFC 8259 JSON in UTF-8, parsed by
orjson.

FastAPI parses bodies with the standard library's ``json.loads``, which lets through what
API.md's "bodies are JSON (UTF-8)" does not mean and turns some bad bodies into a 400
instead of the contract's 422:

- invalid UTF-8, and UTF-16/32 (which ``json.loads`` detects and decodes), were a 400;
- nesting deeper than the interpreter's recursion limit was a RecursionError, a 400;
- ``NaN``/``Infinity`` were accepted, and escaped lone surrogates (``"\\ud800"``) became
  Python strings that no encoder downstream (orjson, Redis, PostgreSQL) accepts: a 500.

orjson refuses all of these with a ``JSONDecodeError`` (a subclass of the standard
library's), which FastAPI answers as its ordinary 422 ``json_invalid``; it also rejects
nesting beyond 1024 levels at once, without recursing, and parses faster.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response


class JSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class JSONRoute(APIRoute):
    """A route whose body, when FastAPI reads it as JSON, is read by orjson."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(JSONRequest(request.scope, request.receive))

        return handle


def require_json_routes(router: APIRouter) -> None:
    """Refuse a router whose routes would parse bodies differently (see the module doc)."""
    for route in router.routes:
        if isinstance(route, APIRoute) and not isinstance(route, JSONRoute):
            raise TypeError(
                f"route {route.path} must be a v5_shared.routing.JSONRoute: declare its router"
                " with APIRouter(route_class=JSONRoute)"
            )
