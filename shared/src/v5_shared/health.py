"""Liveness (no I/O: the process answers), readiness (PostgreSQL and Redis answer), and a
constant hello answer that capacity runs use as the framework's floor."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from .datastores import DataStores
from .metrics import metrics_response
from .routing import JSONRoute

router = APIRouter(include_in_schema=False, route_class=JSONRoute)

READINESS_TIMEOUT_SECONDS = 1.5


async def _check(name: str, probe: object) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, timeout=READINESS_TIMEOUT_SECONDS)  # type: ignore[arg-type]
    except Exception as exc:  # any failure means "not ready", whatever its type
        return name, f"failed: {type(exc).__name__}"
    return name, "ok"


# Probes and metrics: polled all the time, so not access-logged, and never held back by
# admission control (a busy replica must not look dead).
OPERATIONAL_PATHS = frozenset({"/livez", "/readyz", "/metrics"})


@router.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/hello")
async def hello() -> dict[str, str]:
    # No auth and no data store: through the gateway this costs only nginx, uvicorn, FastAPI
    # and our middleware, the floor that loadtests/capacity.py compares the API against.
    return {"hello": "world"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    if getattr(request.app.state, "shutting_down", False):
        return JSONResponse({"detail": "shutting down", "checks": {}}, status_code=503)
    stores: DataStores = request.app.state.stores
    results = dict(
        await asyncio.gather(
            _check("postgresql", stores.check_postgres()),
            _check("redis", stores.check_redis()),
        )
    )
    extra = getattr(request.app.state, "readiness_checks", {})
    for name, check in extra.items():
        results[name] = "ok" if check() else "failed"
    if all(state == "ok" for state in results.values()):
        return JSONResponse({"status": "ready", "checks": results})
    return JSONResponse(
        {"detail": "not ready", "checks": results},
        status_code=503,
        headers={"Retry-After": "1"},
    )


@router.get("/metrics")
async def metrics() -> Response:
    return metrics_response()
