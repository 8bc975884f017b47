"""session/{user_id}/status and DELETE session/{user_id}, as API.md states them."""

from datetime import datetime

from .accounts import Listener


def test_status_of_a_listener_without_conversation(listener: Listener) -> None:
    response = listener.status()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == listener.user_id
    assert body["turns"] == 0 and body["active"] is False and body["session_id"] is None
    assert body["window"] == []
    assert body["trajectory"]["trend"] == "unknown" and body["trajectory"]["points"] == []
    assert body["adjustment_count"] == 0
    assert set(body["bandit"]) >= {"personalized", "mood_match", "popular", "discovery"}
    assert all(set(arm) == {"alpha", "beta", "pulls"} for arm in body["bandit"].values())
    assert body["rewards"] == {"count": 0, "total": 0.0, "mean": None}
    assert body["created_at"] is None and body["last_active_at"] is None
    assert body["expires_at"] is None


def test_status_after_a_conversation(listener: Listener) -> None:
    first = listener.say("I'm happy, play some funk").json()
    listener.say("now I'm a bit tired")
    body = listener.status().json()
    assert body["active"] is True and body["session_id"] == first["session_id"]
    assert body["turns"] == 2
    window = body["window"]
    assert [t["turn"] for t in window] == [1, 2]
    assert window[0]["message"] == "I'm happy, play some funk"
    assert "funk" in window[0]["entities"]["genres"]
    assert window[0]["mood"]["valence"] > 0
    for turn in window:
        assert datetime.fromisoformat(turn["at"]).utcoffset() is not None
    assert body["context"]["window"] == 2
    assert body["context"]["genres"][0]["name"] == "funk"
    points = body["trajectory"]["points"]
    assert [p["turn"] for p in points] == [1, 2]
    assert body["trajectory"]["trend"] in ("declining", "stable", "improving")
    for stamp in ("created_at", "last_active_at", "expires_at"):
        assert datetime.fromisoformat(body[stamp]).utcoffset() is not None
    assert datetime.fromisoformat(body["expires_at"]) > datetime.fromisoformat(
        body["last_active_at"]
    )


def test_delete_forgets_the_session_but_keeps_learning(listener: Listener) -> None:
    listener.say("I love soul music")
    rec = listener.recommend(limit=3).json()
    track_id = rec["tracks"][0]["track_id"]
    listener.adjust({"action": "feedback", "track_id": track_id, "feedback": "like"})
    listener.reward(recommendation_id=rec["recommendation_id"], track_id=track_id, event="like")
    before = listener.status().json()

    response = listener.api.delete(
        f"/api/v1/v5/session/{listener.user_id}", headers=listener.headers
    )
    assert response.status_code == 204
    assert response.content == b""
    after = listener.status().json()
    assert after["turns"] == 0 and after["active"] is False and after["window"] == []
    assert after["context"]["genres"] == [] and after["trajectory"]["points"] == []
    assert after["weights"] == before["weights"]
    assert after["adjustment_count"] == before["adjustment_count"] == 1
    assert after["bandit"] == before["bandit"]
    assert after["rewards"] == before["rewards"] and after["rewards"]["count"] == 1
    assert listener.say("hello again").json()["turn"] == 1
