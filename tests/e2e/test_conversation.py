"""conversation/continue through the gateway, as API.md states it."""

import threading
import time

import httpx
import pytest
import redis

from v5_cluster.cluster import LocalCluster

from .accounts import Listener

MOODS_TREND = ("improving", "declining", "stable", "unknown")


def _some_artist(api: httpx.Client, listener: Listener, genre: str = "jazz") -> str:
    body = api.get(
        "/api/v1/v5/catalog/artists",
        params={"genre": genre, "limit": 200},
        headers=listener.headers,
    ).json()
    # A multi-word name exercises the matcher best.
    return next(a["name"] for a in body["artists"] if " " in a["name"] and a["tracks"] >= 3)


def test_first_turn_shape(listener: Listener) -> None:
    response = listener.say("Hi there, I'm feeling sad, play some jazz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["turn"] == 1
    assert isinstance(body["session_id"], str) and body["session_id"]
    assert isinstance(body["reply"], str) and body["reply"].strip()
    assert set(body["entities"]) >= {"artists", "genres", "moods"}
    assert "jazz" in body["entities"]["genres"]
    context = body["context"]
    assert 1 <= context["window"] <= 10
    assert context["genres"][0]["name"] == "jazz"
    assert isinstance(context["genres"][0]["weight"], float)
    mood = body["mood"]
    assert mood is not None and -1 <= mood["valence"] < 0 and -1 <= mood["arousal"] <= 1
    assert body["trajectory"] == {"trend": "unknown", "points": 1, "valence_slope": 0.0}
    assert 0 <= body["clarity"] <= 1


def test_turns_count_up_in_one_session(listener: Listener) -> None:
    first = listener.say("hello").json()
    second = listener.say("something calm please").json()
    assert second["session_id"] == first["session_id"]
    assert second["turn"] == first["turn"] + 1 == 2


def test_artists_and_genre_aliases_are_recognised(api: httpx.Client, listener: Listener) -> None:
    artist = _some_artist(api, listener)
    body = listener.say(f"I really like {artist.lower()}! also hip hop and some r and b").json()
    assert body["entities"]["artists"] == [artist]
    assert {"hip-hop", "r&b"} <= set(body["entities"]["genres"])
    assert [a["name"] for a in body["context"]["artists"]] == [artist]


def test_context_is_heaviest_first_with_recency(listener: Listener) -> None:
    listener.say("I love rock")
    listener.say("rock is great")
    body = listener.say("maybe some jazz").json()
    names = [g["name"] for g in body["context"]["genres"]]
    weights = [g["weight"] for g in body["context"]["genres"]]
    assert names[0] == "rock" and "jazz" in names
    assert weights == sorted(weights, reverse=True)


def test_sad_is_negative_and_not_happy_is_not_happy(listener: Listener) -> None:
    sad = listener.say("I'm feeling sad").json()["mood"]
    assert sad["valence"] < 0
    not_happy = listener.say("I am not happy").json()["mood"]
    assert not_happy["valence"] < 0
    assert not_happy["label"] != "happy"
    happy = listener.say("I'm so happy today").json()["mood"]
    assert happy["valence"] > 0


def test_trend_declines_and_reply_offers_comfort(listener: Listener) -> None:
    listener.say("I feel great today")
    listener.say("hmm, a bit tired now")
    body = listener.say("honestly I'm really sad and down").json()
    assert body["trajectory"]["trend"] == "declining"
    assert body["trajectory"]["points"] == 3
    assert body["trajectory"]["valence_slope"] < 0
    assert body["reply"].strip()


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("", 422),
        ("   \n\t ", 422),
        ("x" * 1000, 200),
        ("x" * 1001, 422),
        ("  " + "é" * 1000 + "  ", 200),
        ("é" * 1001, 422),
    ],
)
def test_message_length_rules(listener: Listener, message: str, status: int) -> None:
    response = listener.say(message)
    assert response.status_code == status, response.text
    if status == 422:
        assert isinstance(response.json()["detail"], list)


def test_bad_bodies_are_422(api: httpx.Client, listener: Listener) -> None:
    url = "/api/v1/v5/conversation/continue"
    for body in (
        {"user_id": listener.user_id},
        {"message": "hi"},
        {"user_id": listener.user_id, "message": "hi", "extra": 1},
        {"user_id": listener.user_id, "message": 5},
    ):
        assert api.post(url, json=body, headers=listener.headers).status_code == 422


def test_fifty_turns_keep_a_window_of_ten_in_order(listener: Listener) -> None:
    for i in range(1, 51):
        body = listener.say(f"message number {i}").json()
        assert body["turn"] == i
        assert body["context"]["window"] == min(i, 10)
    window = listener.status().json()["window"]
    assert [t["turn"] for t in window] == list(range(41, 51))
    assert [t["message"] for t in window] == [f"message number {i}" for i in range(41, 51)]


def test_concurrent_turns_are_all_counted(listener: Listener, gateway_url: str) -> None:
    headers = listener.headers

    def send(n: int) -> None:
        with httpx.Client(base_url=gateway_url, timeout=20) as client:
            for i in range(n):
                r = client.post(
                    "/api/v1/v5/conversation/continue",
                    headers=headers,
                    json={"user_id": listener.user_id, "message": f"c{i}"},
                )
                assert r.status_code == 200, r.text

    threads = [threading.Thread(target=send, args=(10,)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    status = listener.status().json()
    assert status["turns"] == 50
    turns = [t["turn"] for t in status["window"]]
    assert turns == list(range(41, 51))


def test_expired_session_starts_a_new_one(listener: Listener, cluster: LocalCluster) -> None:
    first = listener.say("hello there").json()
    status = listener.status().json()
    assert status["expires_at"] is not None and status["active"] is True
    # Let the session's keys expire now, as SESSION_TTL_SECONDS of inactivity would.
    client = redis.Redis(port=cluster.config.redis_port)
    keys = client.keys(f"v5:s:{{{listener.user_id}}}:*")
    assert keys
    for key in keys:
        client.pexpire(key, 1)
    time.sleep(0.05)
    assert client.keys(f"v5:s:{{{listener.user_id}}}:*") == []
    again = listener.say("hello again").json()
    assert again["turn"] == 1
    assert again["session_id"] != first["session_id"]
