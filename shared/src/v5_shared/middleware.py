"""Per-request context as plain ASGI middleware (cheaper than BaseHTTPMiddleware):
request id in and out, security headers, Prometheus metrics by route template, access log."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .health import OPERATIONAL_PATHS
from .logging import get_logger
from .metrics import REQUEST_DURATION, REQUESTS

_VALID_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
]

access_log = get_logger("access")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            if _VALID_REQUEST_ID.match(value):
                return value.decode()
            break
    return uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, service: str, log_requests: bool = True) -> None:
        self.app = app
        self.service = service
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        request_id_header = (b"x-request-id", request_id.encode())
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k != b"x-request-id"]
                headers.append(request_id_header)
                headers.extend(SECURITY_HEADERS)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            status = status_holder["status"]
            method = scope["method"]
            REQUESTS.labels(self.service, method, template, str(status)).inc()
            REQUEST_DURATION.labels(self.service, method, template).observe(elapsed)
            if self.log_requests and template not in OPERATIONAL_PATHS:
                access_log.info(
                    "request",
                    method=method,
                    path=scope["path"],
                    route=template,
                    status=status,
                    duration_ms=round(elapsed * 1000, 3),
                )
            structlog.contextvars.clear_contextvars()
