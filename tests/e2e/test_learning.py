"""learning/weights and feedback/reward through the gateway, as API.md states them."""

import asyncio
import threading
import time

import asyncpg
import httpx
import pytest
import redis

from v5_cluster.cluster import LocalCluster

from .accounts import Listener

DEFAULTS = {
    "genre_match": 0.8,
    "artist_match": 0.6,
    "mood_match": 0.7,
    "energy_match": 0.5,
    "valence_match": 0.5,
    "taste_match": 0.6,
    "popularity": 0.4,
    "novelty": 0.3,
    "diversity": 0.3,
}


def test_new_listener_has_the_defaults(listener: Listener) -> None:
    body = listener.weights().json()
    assert body == {
        "user_id": listener.user_id,
        "weights": DEFAULTS,
        "adjustment_count": 0,
        "updated_at": None,
    }


def test_like_raises_and_skip_lowers_matched_weights(listener: Listener) -> None:
    listener.say("I love jazz")
    track = listener.recommend(limit=5).json()["tracks"][0]
    liked = listener.adjust(
        {"action": "feedback", "track_id": track["track_id"], "feedback": "like"}
    )
    assert liked.status_code == 200, liked.text
    after_like = liked.json()
    assert after_like["adjustment_count"] == 1
    assert after_like["updated_at"] is not None
    raised = [k for k in DEFAULTS if after_like["weights"][k] > DEFAULTS[k]]
    assert raised, "a like moves the matched features up"
    assert all(after_like["weights"][k] >= DEFAULTS[k] for k in DEFAULTS)
    skipped = listener.adjust(
        {"action": "feedback", "track_id": track["track_id"], "feedback": "skip"}
    ).json()
    assert skipped["adjustment_count"] == 2
    assert any(skipped["weights"][k] < after_like["weights"][k] for k in raised)
    assert all(0 <= v <= 1 for v in skipped["weights"].values())


def test_explicit_partial_update_and_reset(listener: Listener) -> None:
    body = listener.adjust({"action": "explicit", "weights": {"novelty": 1.0, "popularity": 0.0}})
    assert body.status_code == 200, body.text
    weights = body.json()["weights"]
    assert weights["novelty"] == 1.0 and weights["popularity"] == 0.0
    assert weights["genre_match"] == DEFAULTS["genre_match"]
    reset = listener.adjust({"action": "reset"}).json()
    assert reset["weights"] == DEFAULTS
    assert reset["adjustment_count"] == 2
    assert listener.weights().json()["adjustment_count"] == 2


@pytest.mark.parametrize(
    "body",
    [
        {"action": "explicit", "weights": {"novelty": 1.01}},
        {"action": "explicit", "weights": {"novelty": -0.01}},
        {"action": "explicit", "weights": {"loudness": 0.5}},
        {"action": "explicit", "weights": {"novelty": "high"}},
        {"action": "feedback", "track_id": "v5t-000001", "feedback": "love"},
        {"action": "promote"},
        {"action": "reset", "extra": 1},
        {},
    ],
)
def test_invalid_adjustments_are_422_and_change_nothing(listener: Listener, body: dict) -> None:
    response = listener.adjust(body)
    assert response.status_code == 422, response.text
    assert listener.weights().json()["adjustment_count"] == 0


def test_unknown_track_is_404(listener: Listener) -> None:
    response = listener.adjust({"action": "feedback", "track_id": "nope", "feedback": "like"})
    assert response.status_code == 404
    assert listener.weights().json()["adjustment_count"] == 0


def test_concurrent_feedback_counts_every_adjustment(listener: Listener, gateway_url: str) -> None:
    track_id = listener.recommend(limit=1).json()["tracks"][0]["track_id"]

    def send(n: int) -> None:
        with httpx.Client(base_url=gateway_url, timeout=20) as client:
            for i in range(n):
                r = client.post(
                    f"/api/v1/v5/learning/weights/{listener.user_id}",
                    headers=listener.headers,
                    json={
                        "action": "feedback",
                        "track_id": track_id,
                        "feedback": "like" if i % 2 else "skip",
                    },
                )
                assert r.status_code == 200, r.text

    threads = [threading.Thread(target=send, args=(20,)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert listener.weights().json()["adjustment_count"] == 100


def test_reward_updates_the_arms_posterior(listener: Listener) -> None:
    rec = listener.recommend(limit=5).json()
    track_id = rec["tracks"][0]["track_id"]
    liked = listener.reward(
        recommendation_id=rec["recommendation_id"], track_id=track_id, event="like"
    )
    assert liked.status_code == 200, liked.text
    first = liked.json()
    assert first["strategy"] == rec["strategy"]
    assert 0 < first["reward"] <= 1
    skipped = listener.reward(
        recommendation_id=rec["recommendation_id"], track_id=track_id, event="skip"
    ).json()
    assert -1 <= skipped["reward"] < 0
    total_first = first["posterior"]["alpha"] + first["posterior"]["beta"]
    total_second = skipped["posterior"]["alpha"] + skipped["posterior"]["beta"]
    assert total_second == pytest.approx(total_first + 1)
    status = listener.status().json()
    assert status["rewards"]["count"] == 2
    arm = status["bandit"][rec["strategy"]]
    assert arm["alpha"] == pytest.approx(skipped["posterior"]["alpha"])


def test_reward_ordering(listener: Listener) -> None:
    rec = listener.recommend(limit=3).json()
    args = {"recommendation_id": rec["recommendation_id"], "track_id": rec["tracks"][0]["track_id"]}

    def value(event: str, ratio: float | None = None) -> float:
        extra = {} if ratio is None else {"listen_ratio": ratio}
        response = listener.reward(event=event, **args, **extra)
        assert response.status_code == 200, response.text
        return response.json()["reward"]

    for ratio in (0.0, 0.5, 1.0):
        save, like = value("save", ratio), value("like", ratio)
        complete, play = value("complete", ratio), value("play", ratio)
        skip, dislike = value("skip", ratio), value("dislike", ratio)
        assert save >= like > complete > play > skip > dislike
        assert like > 0 > skip
    assert value("play", 0.1) < value("play", 0.6) < value("play", 0.95)


def test_reward_errors(listener: Listener, other_listener: Listener) -> None:
    rec = listener.recommend(limit=3).json()
    track_id = rec["tracks"][0]["track_id"]
    assert (
        listener.reward(recommendation_id="no-such", track_id=track_id, event="like").status_code
        == 404
    )
    outside = listener.reward(
        recommendation_id=rec["recommendation_id"], track_id="v5t-999999", event="like"
    )
    assert outside.status_code == 422
    theirs = other_listener.reward(
        recommendation_id=rec["recommendation_id"], track_id=track_id, event="like"
    )
    assert theirs.status_code == 403
    for bad in (
        {"event": "love"},
        {"event": "play", "listen_ratio": 1.5},
        {"event": "play", "listen_ratio": -0.1},
    ):
        response = listener.reward(
            recommendation_id=rec["recommendation_id"], track_id=track_id, **bad
        )
        assert response.status_code == 422
    assert listener.status().json()["rewards"]["count"] == 0


def test_impressions_reach_postgresql_with_propensities(
    listener: Listener, cluster: LocalCluster
) -> None:
    ids = {listener.recommend(limit=3).json()["recommendation_id"] for _ in range(5)}

    async def stored() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(cluster.config.database_url)
        try:
            return await conn.fetch(
                "SELECT recommendation_id, arm, propensity, track_ids FROM recommendations"
                " WHERE user_id = $1",
                listener.user_id,
            )
        finally:
            await conn.close()

    deadline = time.monotonic() + 10
    rows = asyncio.run(stored())
    while len(rows) < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = asyncio.run(stored())
    assert {r["recommendation_id"] for r in rows} == ids
    assert all(0 < r["propensity"] <= 1 and len(r["track_ids"]) == 3 for r in rows)
    pulls = sum(arm["pulls"] for arm in listener.status().json()["bandit"].values())
    assert pulls == 5
    # Stored entries leave the stream: it holds only what is still in flight.
    stream = redis.Redis(port=cluster.config.redis_port)
    leftover = [
        fields
        for _id, fields in stream.xrange("v5:impressions")
        if listener.user_id.encode() in fields[b"impression"]
    ]
    assert leftover == []
