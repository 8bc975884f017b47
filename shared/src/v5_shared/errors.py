"""API.md's JSON errors: a top-level `detail`, never a stack trace or HTML.

A data store that is down or too slow becomes a fast 503 with Retry-After, never a 500.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from .datastores import DependencyUnavailable
from .logging import get_logger

log = get_logger(__name__)

RETRY_AFTER_SECONDS = "1"

# Errors that mean "a data store is unreachable, restarting or too slow", not "a bug here".
DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    DependencyUnavailable,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    # A pooled connection caught mid-operation by a server shutdown.
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.OperatorInterventionError,
    ConnectionError,
    TimeoutError,
    OSError,
)


def _dependency_name(exc: BaseException) -> str:
    if isinstance(exc, DependencyUnavailable):
        return exc.dependency
    if isinstance(exc, redis.exceptions.RedisError):
        return "redis"
    if isinstance(
        exc, asyncpg.PostgresError | asyncpg.InterfaceError | asyncpg.exceptions.InternalClientError
    ):
        return "postgresql"
    return "a data store"


def service_unavailable(dependency: str) -> JSONResponse:
    return JSONResponse(
        {"detail": f"service temporarily unavailable: {dependency} is not answering"},
        status_code=503,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def _clean_validation_errors(errors: Any) -> list[dict[str, Any]]:
    # FastAPI's default echoes the offending input, which may be a password: keep loc/msg/type.
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in errors
    ]


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method that some route serves at the request's path. Starlette's 405 names only
    the first matching route's, so a path with a GET and a POST route advertised one."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": _allowed_methods(request)}
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _clean_validation_errors(exc.errors())}, status_code=422)

    async def dependency_error(_request: Request, exc: Exception) -> JSONResponse:
        dependency = _dependency_name(exc)
        log.warning("dependency_unavailable", dependency=dependency, error=repr(exc))
        return service_unavailable(dependency)

    for exc_type in DEPENDENCY_ERRORS:
        app.add_exception_handler(exc_type, dependency_error)

    @app.exception_handler(Exception)
    async def unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled_error", exc_info=exc)
        return JSONResponse({"detail": "internal server error"}, status_code=500)
