"""Admission control on a plain ASGI app: a slot per running request, a bounded wait, then a
fast 503 with Retry-After; probes never held back."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from v5_shared.admission import AdmissionControl


class GatedApp:
    """Answers 200 once its gate opens; counts the requests it ran."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.started += 1
        await self.gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def call(app: Any, path: str = "/api/v1/v5/x") -> tuple[int, dict[bytes, bytes], bytes]:
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app({"type": "http", "path": path, "method": "POST", "headers": []}, receive, send)
    start, body = messages[0], messages[1]
    return start["status"], dict(start["headers"]), body["body"]


async def test_requests_beyond_the_limit_wait_then_get_a_fast_503() -> None:
    inner = GatedApp()
    app = AdmissionControl(inner, service="test", limit=2, wait_seconds=0.05)
    running = [asyncio.create_task(call(app)) for _ in range(2)]
    await asyncio.sleep(0.01)
    assert inner.started == 2

    started = time.monotonic()
    status, headers, body = await call(app)
    waited = time.monotonic() - started
    assert status == 503
    assert headers[b"retry-after"] == b"1"
    assert headers[b"content-type"] == b"application/json"
    assert orjson.loads(body) == {"detail": "service at capacity, retry shortly"}
    assert 0.04 <= waited < 1.0  # it waited for a slot, not for the running requests
    assert inner.started == 2  # the refused request never reached the app

    inner.gate.set()
    assert [r[0] for r in await asyncio.gather(*running)] == [200, 200]


async def test_a_request_that_gets_a_slot_within_the_wait_is_served() -> None:
    inner = GatedApp()
    app = AdmissionControl(inner, service="test", limit=1, wait_seconds=5.0)
    first = asyncio.create_task(call(app))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(call(app))
    await asyncio.sleep(0.01)
    assert inner.started == 1  # the second waits for the slot
    inner.gate.set()
    assert (await first)[0] == 200
    assert (await second)[0] == 200
    assert inner.started == 2


async def test_waiting_requests_are_admitted_in_arrival_order() -> None:
    order: list[int] = []
    gate = asyncio.Event()

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        order.append(int(scope["path"].rsplit("/", 1)[1]))
        await gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = AdmissionControl(inner, service="test", limit=1, wait_seconds=5.0)
    tasks = []
    for i in range(5):
        tasks.append(asyncio.create_task(call(app, f"/api/v1/v5/x/{i}")))
        await asyncio.sleep(0.005)
    gate.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]


async def test_probes_and_metrics_are_never_held_back() -> None:
    inner = GatedApp()
    app = AdmissionControl(inner, service="test", limit=1, wait_seconds=0.01)
    occupying = asyncio.create_task(call(app))
    await asyncio.sleep(0.01)
    probes = [asyncio.create_task(call(app, path)) for path in ("/livez", "/readyz", "/metrics")]
    await asyncio.sleep(0.05)
    assert inner.started == 4  # the probes run beside the request holding the only slot
    assert (await call(app))[0] == 503
    inner.gate.set()
    assert [(await p)[0] for p in probes] == [200, 200, 200]
    assert (await occupying)[0] == 200
