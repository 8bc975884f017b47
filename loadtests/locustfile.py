"""Simulated listeners: locust users that behave like people using V5.

Each listener has its own account (from V5_ACCOUNTS_FILE, written by `v5ctl
provision-listeners`) and, after a random start phase, repeats: think (exponential, mean
V5_THINK_SECONDS), then act. Of the acts that start something, 60 % are conversation turns and
40 % requests for recommendations; about 30 % of the recommendations it gets lead, at its next
act, to a reaction to one of the tracks (like, skip, complete or save), sent half of the time
as learning feedback and half as a reward for the recommendation; now and then it checks its
session status instead. Messages are composed from moods, genres, activities and the
catalog's artists (fetched once per locust process).

Any response other than 2xx, or a body without what the contract promises, is a failure.

Run directly: `locust -f loadtests/locustfile.py --host http://127.0.0.1:8080` with
V5_ACCOUNTS_FILE set; the runners (`make loadtest`, `make loadtest-ui`, `make capacity`) do
this against a throwaway cluster.
"""

from __future__ import annotations

import os
import random
from collections import deque
from dataclasses import dataclass
from typing import Any

from locust import FastHttpUser, events, task

from loadtests.accounts import AccountPool
from loadtests.messages import CANONICAL_GENRES, compose_message
from loadtests.samples import record_requests_when_asked
from loadtests.think import ThinkTime, schedule_from_environment

API = "/api/v1/v5"

# Shares of the acts that start something (the rest are reactions to recommendations).
STATUS_SHARE = 0.05
CONVERSATION_SHARE_OF_REST = 0.60
REACTION_SHARE = 0.30
# Reactions, how often each comes, and how much of the track was heard before it (a
# reward's listen_ratio).
REACTIONS = ("like", "skip", "complete", "save")
REACTION_WEIGHTS = (0.30, 0.35, 0.25, 0.10)
LISTEN_RATIO = {"like": (0.6, 1.0), "skip": (0.02, 0.3), "complete": (1.0, 1.0), "save": (0.7, 1.0)}
# A recommendation request names a genre in its context this often.
GENRE_CONTEXT_SHARE = 0.2
# Recently recommended tracks a listener asks not to hear again.
REMEMBERED_TRACKS = 50

record_requests_when_asked(events)


class ArtistNames:
    """The catalog's artists, fetched once per locust process by the first listener."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.requested = False


ACCOUNTS = AccountPool(
    os.environ.get("V5_ACCOUNTS_FILE"), processes=int(os.environ.get("V5_GENERATOR_PROCESSES") or 1)
)
ARTISTS = ArtistNames()
THINK = ThinkTime(schedule_from_environment())


@dataclass(frozen=True, slots=True)
class PendingReaction:
    recommendation_id: str
    track_id: str


class Listener(FastHttpUser):
    wait_time = THINK
    # nginx answers 504 after 10 s; a client that waited longer would only hide it.
    network_timeout = 15.0
    connection_timeout = 5.0

    def on_start(self) -> None:
        # A worker of `locust --processes` knows its index once the master acknowledged it,
        # before any user starts; a single process is index 0.
        account = ACCOUNTS.take(max(0, getattr(self.environment.runner, "worker_index", 0)))
        self.user_id = account["user_id"]
        self.auth = {"Authorization": f"Bearer {account['access_token']}"}
        self.rng = random.Random()
        self.reaction: PendingReaction | None = None
        self.heard: deque[str] = deque(maxlen=REMEMBERED_TRACKS)
        if not ARTISTS.requested:
            ARTISTS.requested = True
            self.fetch_artists()
        # The random start phase: the first request comes after a pause like any other.
        self.wait()

    @task
    def act(self) -> None:
        if self.reaction is not None:
            self.react(self.reaction)
            self.reaction = None
            return
        draw = self.rng.random()
        if draw < STATUS_SHARE:
            self.check_status()
        elif draw < STATUS_SHARE + (1 - STATUS_SHARE) * CONVERSATION_SHARE_OF_REST:
            self.converse()
        else:
            self.ask_for_recommendations()

    def fetch_artists(self) -> None:
        body = self.call("GET", f"{API}/catalog/artists?limit=200", "/catalog/artists", "artists")
        if body is not None:
            ARTISTS.names = [artist["name"] for artist in body["artists"]]

    def converse(self) -> None:
        message = compose_message(self.rng, ARTISTS.names)
        self.call(
            "POST",
            f"{API}/conversation/continue",
            "/conversation/continue",
            "reply",
            json={"user_id": self.user_id, "message": message},
        )

    def ask_for_recommendations(self) -> None:
        request: dict[str, Any] = {"user_id": self.user_id, "limit": 10}
        if self.heard:
            request["exclude_track_ids"] = list(self.heard)
        if self.rng.random() < GENRE_CONTEXT_SHARE:
            request["context"] = {"genres": [self.rng.choice(CANONICAL_GENRES)]}
        body = self.call(
            "POST",
            f"{API}/recommendation/adaptive",
            "/recommendation/adaptive",
            "tracks",
            json=request,
        )
        if body is None or not body["tracks"]:
            return
        self.heard.extend(track["track_id"] for track in body["tracks"])
        if self.rng.random() < REACTION_SHARE:
            track = self.rng.choice(body["tracks"])
            self.reaction = PendingReaction(body["recommendation_id"], track["track_id"])

    def react(self, reaction: PendingReaction) -> None:
        event = self.rng.choices(REACTIONS, weights=REACTION_WEIGHTS)[0]
        if self.rng.random() < 0.5:
            self.call(
                "POST",
                f"{API}/learning/weights/{self.user_id}",
                "/learning/weights/{user_id} feedback",
                "weights",
                json={"action": "feedback", "track_id": reaction.track_id, "feedback": event},
            )
            return
        low, high = LISTEN_RATIO[event]
        self.call(
            "POST",
            f"{API}/feedback/reward",
            "/feedback/reward",
            "reward",
            json={
                "user_id": self.user_id,
                "recommendation_id": reaction.recommendation_id,
                "track_id": reaction.track_id,
                "event": event,
                "listen_ratio": round(self.rng.uniform(low, high), 3),
            },
        )

    def check_status(self) -> None:
        self.call(
            "GET", f"{API}/session/{self.user_id}/status", "/session/{user_id}/status", "turns"
        )

    def call(
        self, method: str, path: str, name: str, expected_field: str, **kwargs: Any
    ) -> dict[str, Any] | None:
        """One request; the body when it is a 2xx JSON object with `expected_field`, else
        None and the request counted as failed."""
        with self.client.request(
            method, path, name=name, headers=self.auth, catch_response=True, **kwargs
        ) as response:
            if not 200 <= (response.status_code or 0) < 300:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                return None
            try:
                body = response.json()
            except ValueError:
                response.failure("the body is not JSON")
                return None
            if not isinstance(body, dict) or expected_field not in body:
                response.failure(f"the body has no {expected_field!r}")
                return None
            response.success()
            return body
