"""Idempotency-Key on every POST: a repeat returns the first response with no further
effect; the same key with another body is 409; keys of different users never collide."""

import uuid

import httpx

from .accounts import Listener


def _key() -> dict[str, str]:
    return {"Idempotency-Key": f"k-{uuid.uuid4()}"}


def test_repeated_turn_has_one_effect(listener: Listener) -> None:
    key = _key()
    first = listener.say("I love jazz", **key)
    again = listener.say("I love jazz", **key)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert "idempotent-replay" not in first.headers
    assert again.headers["idempotent-replay"] == "true"
    assert listener.status().json()["turns"] == 1
    conflict = listener.say("I love rock", **key)
    assert conflict.status_code == 409
    assert listener.status().json()["turns"] == 1


def test_repeated_weight_feedback_has_one_effect(listener: Listener) -> None:
    key = _key()
    body = {"action": "explicit", "weights": {"novelty": 0.9}}
    first = listener.adjust(body, **key)
    again = listener.adjust(body, **key)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replay"] == "true"
    assert listener.weights().json()["adjustment_count"] == 1
    assert listener.adjust({"action": "reset"}, **key).status_code == 409
    assert listener.weights().json()["adjustment_count"] == 1


def test_repeated_recommendation_and_reward(listener: Listener) -> None:
    key = _key()
    headers = {**listener.headers, **key}
    url = "/api/v1/v5/recommendation/adaptive"
    first = listener.api.post(url, json={"user_id": listener.user_id, "limit": 4}, headers=headers)
    again = listener.api.post(url, json={"user_id": listener.user_id, "limit": 4}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    other = listener.api.post(url, json={"user_id": listener.user_id, "limit": 5}, headers=headers)
    assert other.status_code == 409

    rec = first.json()
    reward_key = _key()
    body = {
        "user_id": listener.user_id,
        "recommendation_id": rec["recommendation_id"],
        "track_id": rec["tracks"][0]["track_id"],
        "event": "like",
    }
    r1 = listener.api.post(
        "/api/v1/v5/feedback/reward", json=body, headers={**listener.headers, **reward_key}
    )
    r2 = listener.api.post(
        "/api/v1/v5/feedback/reward", json=body, headers={**listener.headers, **reward_key}
    )
    assert r1.status_code == r2.status_code == 200 and r1.json() == r2.json()
    assert r2.headers["idempotent-replay"] == "true"
    assert listener.status().json()["rewards"]["count"] == 1


def test_keys_of_different_users_do_not_collide(
    listener: Listener, other_listener: Listener
) -> None:
    key = _key()
    assert listener.adjust({"action": "reset"}, **key).status_code == 200
    theirs = other_listener.adjust({"action": "explicit", "weights": {"novelty": 0.2}}, **key)
    assert theirs.status_code == 200
    assert theirs.json()["user_id"] == other_listener.user_id


def test_registration_can_be_retried(api: httpx.Client) -> None:
    key = _key()
    body = {"user_id": f"idem_{uuid.uuid4().hex[:10]}", "password": "retry safely"}
    first = api.post("/api/v1/v5/auth/register", json=body, headers=key)
    again = api.post("/api/v1/v5/auth/register", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()


def test_malformed_keys_are_422(listener: Listener) -> None:
    for bad in ("x" * 129, "has space", "tab\there"):
        response = listener.say("hello", **{"Idempotency-Key": bad})
        assert response.status_code == 422, bad
    assert listener.status().json()["turns"] == 0
