"""Prometheus metrics. One uvicorn process per replica, so the default registry is exact
(no multiprocess mode needed).

Every label takes values from a small fixed set (service, route template, status, arm,
event, feedback type, a flag): never a user id, track id or free text, so the number of
series stays bounded however many listeners there are."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.responses import Response

from v5_shared.domain.bandit import ARMS, eligible_arms
from v5_shared.domain.rewards import EVENTS
from v5_shared.domain.weights import FEEDBACK_TYPES

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

RECOMMENDATIONS = Counter(
    "v5_recommendations_total",
    "Recommendations served (not replays), by the arm Thompson sampling chose and whether "
    "comfort was applied",
    ["arm", "comfort"],
)
REWARDS = Counter(
    "v5_rewards_total",
    "Rewards recorded (not replays), by the arm that made the recommendation and the event",
    ["arm", "event"],
)
# A reward r in [-1, 1] is observed as (1 + r) / 2 in [0, 1], the success share it adds to
# the arm's Beta posterior (alpha grows by it, beta by the rest). A sum of raw rewards could
# fall, which rate() would take for a counter reset (prometheus-client leaves out _sum
# for that reason when a bucket is negative); this sum only grows. The mean reward over a
# window is 2 * sum / count - 1.
REWARD_SUCCESS = Histogram(
    "v5_reward_success_share",
    "Rewards recorded (not replays) as the success share (1 + reward) / 2 added to the "
    "arm's posterior, by arm; 2 * sum / count - 1 is the mean reward",
    ["arm"],
    buckets=(0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0),
)
WEIGHT_FEEDBACK = Counter(
    "v5_weight_feedback_total",
    "Learning feedback on a track applied to the weights (not replays), by feedback type",
    ["feedback"],
)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def expose_recommendation_series() -> None:
    """Create every (arm, comfort) series at zero, so that a replica's first recommendation
    with an arm shows in rate() (a series that appears already at 1 counts as no increase),
    and the dashboards show idle arms as 0 rather than no data. Comfort is only eligible
    when comfort applies, so (comfort, false) cannot occur and is left out."""
    for comfort in (False, True):
        for arm in eligible_arms(comfort_applies=comfort):
            RECOMMENDATIONS.labels(arm, _flag(comfort))


def expose_learning_series() -> None:
    """Create every reward and feedback series at zero (see expose_recommendation_series)."""
    for arm in ARMS:
        REWARD_SUCCESS.labels(arm)
        for event in EVENTS:
            REWARDS.labels(arm, event)
    for feedback in FEEDBACK_TYPES:
        WEIGHT_FEEDBACK.labels(feedback)


def count_recommendation(arm: str, comfort: bool) -> None:
    RECOMMENDATIONS.labels(arm, _flag(comfort)).inc()


def count_reward(arm: str, event: str, value: float) -> None:
    REWARDS.labels(arm, event).inc()
    REWARD_SUCCESS.labels(arm).observe(min(1.0, max(0.0, (1.0 + value) / 2)))


def count_weight_feedback(feedback: str) -> None:
    WEIGHT_FEEDBACK.labels(feedback).inc()


def metrics_response() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
