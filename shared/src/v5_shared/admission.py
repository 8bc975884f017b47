"""Admission control: a replica past its capacity answers a fast 503 instead of queueing.

Without it every request that reaches a saturated replica is started at once; they all
share the CPU, so each takes longer the more there are, and past the knee the latency of
every request grows until clients time out (nginx answered 504 after 10 s in capacity runs).
Here at most ``limit`` requests run at once; the next ones wait for a slot in arrival
order, and one that has waited ``wait_seconds`` is answered 503 with Retry-After at once:
a burst is absorbed, sustained overload is refused early, and the requests that are
admitted keep their latency.

Health probes and metrics are never held back, so an overloaded replica is not mistaken
for a dead one and its metrics can still be read."""

from __future__ import annotations

import asyncio

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from .health import OPERATIONAL_PATHS
from .metrics import REQUESTS_SHED

RETRY_AFTER_SECONDS = b"1"
_BODY = orjson.dumps({"detail": "service at capacity, retry shortly"})


class AdmissionControl:
    def __init__(self, app: ASGIApp, *, service: str, limit: int, wait_seconds: float) -> None:
        self.app = app
        self.service = service
        self.limit = limit
        self.wait_seconds = wait_seconds
        self._slots = asyncio.Semaphore(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPERATIONAL_PATHS:
            await self.app(scope, receive, send)
            return
        if not self._slots.locked():
            # The common case: a free slot, taken without waiting (no timer set up).
            await self._slots.acquire()
        else:
            try:
                async with asyncio.timeout(self.wait_seconds):
                    await self._slots.acquire()
            except TimeoutError:
                REQUESTS_SHED.labels(self.service).inc()
                await _refuse(send)
                return
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()


async def _refuse(send: Send) -> None:
    # The request body is left unread: uvicorn discards it, and nothing was done.
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_BODY)).encode()),
                (b"retry-after", RETRY_AFTER_SECONDS),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _BODY})
