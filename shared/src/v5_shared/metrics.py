"""Prometheus metrics. One uvicorn process per replica, so the default registry is exact
(no multiprocess mode needed)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.responses import Response

REQUESTS = Counter(
    "v5_http_requests_total",
    "HTTP requests handled, by route template and status",
    ["service", "method", "route", "status"],
)
REQUEST_DURATION = Histogram(
    "v5_http_request_duration_seconds",
    "Time to handle an HTTP request, by route template",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

REQUESTS_SHED = Counter(
    "v5_http_requests_shed_total",
    "Requests answered 503 at once because the replica was at capacity (admission control)",
    ["service"],
)


def metrics_response() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
