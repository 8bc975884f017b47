"""The same listeners against a running cluster, through the gateway (``--live URL``).

Each listener registers, takes a token and then does what they do in process, as HTTP:
``conversation/continue`` for what they say, ``DELETE /session/{user_id}`` when a session
ends, ``recommendation/adaptive`` for a list, and for every track heard
``feedback/reward`` and ``learning/weights/{user_id}`` (``{"action": "feedback"}``). The
policy is whatever the cluster runs: the product. Their hidden tastes are computed on the
same generated catalog, which the cluster seeds by default (checked against
``catalog/stats`` when the first listener has a token).

Every POST carries an ``Idempotency-Key``, so that a retry after a 429 or 503 (the
``Retry-After`` is honoured) cannot count twice. With ``check_mirror`` each turn's
``context`` and trajectory are compared with the in-process session mirror fed the same
messages: the count of differences is reported (it should be 0).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np

from conversation_service.understanding import EntityMatcher, understand
from recommendation_service.catalog import CatalogIndex
from v5_shared.domain.trajectory import valence_trend

from .product import Served
from .session import SessionMirror

API = "/api/v1/v5"
RETRIES = 8


class LiveError(RuntimeError):
    """The cluster answered something the listeners cannot go on from."""


class LiveProduct:
    def __init__(
        self,
        client: httpx.Client,
        catalog: CatalogIndex,
        matcher: EntityMatcher,
        *,
        run_id: str | None = None,
        check_mirror: bool = True,
    ) -> None:
        self.client = client
        self.catalog = catalog
        self.matcher = matcher
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.check_mirror = check_mirror
        self.users: dict[int, tuple[str, dict[str, str]]] = {}
        self.mirrors: dict[int, SessionMirror] = {}
        self.mirror_mismatches: list[str] = []
        self.requests = 0
        self.retries = 0
        self._keys = 0
        self.catalog_checked = False

    # --- HTTP ---------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(headers or {})
        if method == "POST":
            self._keys += 1
            headers["Idempotency-Key"] = f"sim-{self.run_id}-{self._keys}"
        for attempt in range(RETRIES):
            response = self.client.request(method, API + path, headers=headers, **kwargs)
            self.requests += 1
            if response.status_code not in (429, 502, 503, 504) or attempt == RETRIES - 1:
                return response
            self.retries += 1
            try:
                wait = float(response.headers.get("Retry-After", "0.2"))
            except ValueError:
                wait = 0.2
            time.sleep(min(max(wait, 0.05), 5.0))
        raise AssertionError("unreachable")

    def _ok(self, response: httpx.Response, *expected: int) -> Any:
        if response.status_code not in (expected or (200,)):
            raise LiveError(
                f"{response.request.method} {response.request.url.path}: "
                f"{response.status_code} {response.text[:300]}"
            )
        return response.json() if response.content else None

    def check_catalog(self, headers: dict[str, str]) -> None:
        stats = self._ok(self._call("GET", "/catalog/stats", headers=headers))
        local = (len(self.catalog.tracks), len(self.catalog.artists), len(self.catalog.genres))
        remote = (stats["tracks"], stats["artists"], stats["genres"])
        if local != remote:
            raise LiveError(
                f"the cluster's catalog {remote} (tracks, artists, genres) is not the default "
                f"generated one {local}: the listeners' tastes are defined on the default"
            )

    # --- System -------------------------------------------------------------------------

    def begin(self, listener_id: int) -> None:
        user_id = f"sim-{self.run_id}-{listener_id}"
        password = f"pw-{uuid.uuid4().hex}"
        body = {"user_id": user_id, "password": password}
        self._ok(self._call("POST", "/auth/register", json=body), 201)
        token = self._ok(self._call("POST", "/auth/token", json=body))["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        if not self.catalog_checked:
            self.check_catalog(headers)  # before anything depends on it
            self.catalog_checked = True
        self.users[listener_id] = (user_id, headers)
        self.mirrors[listener_id] = SessionMirror()

    def end_session(self, listener_id: int) -> None:
        user_id, headers = self.users[listener_id]
        self._ok(self._call("DELETE", f"/session/{user_id}", headers=headers), 204)
        self.mirrors[listener_id].end()

    def say(self, listener_id: int, message: str) -> Any:
        user_id, headers = self.users[listener_id]
        body = self._ok(
            self._call(
                "POST",
                "/conversation/continue",
                headers=headers,
                json={"user_id": user_id, "message": message},
            )
        )
        if self.check_mirror:
            self._compare(listener_id, message, body)
        return body

    def _compare(self, listener_id: int, message: str, body: dict[str, Any]) -> None:
        mirror = self.mirrors[listener_id]
        mirror.apply(message, understand(message, self.matcher))
        state = mirror.state
        for kind in ("artists", "genres", "moods"):
            mine = [(w.name, w.weight) for w in getattr(state.context, kind)]
            theirs = [(w["name"], float(w["weight"])) for w in body["context"][kind]]
            if len(mine) != len(theirs) or any(
                a[0] != b[0] or abs(a[1] - b[1]) > 1e-9 for a, b in zip(mine, theirs, strict=False)
            ):
                self.mirror_mismatches.append(f"{kind} after {message!r}: {mine} != {theirs}")
        trend, slope = valence_trend([float(p["valence"]) for p in state.points])
        trajectory = body["trajectory"]
        if (trajectory["points"], trajectory["trend"]) != (len(state.points), trend) or abs(
            trajectory["valence_slope"] - slope
        ) > 1e-9:
            self.mirror_mismatches.append(f"trajectory after {message!r}: {trajectory}")
        if body["turn"] != state.turns:
            self.mirror_mismatches.append(f"turn after {message!r}: {body['turn']}")

    def recommend(self, listener_id: int, limit: int, rng: np.random.Generator) -> Served:
        user_id, headers = self.users[listener_id]
        body = self._ok(
            self._call(
                "POST",
                "/recommendation/adaptive",
                headers=headers,
                json={"user_id": user_id, "limit": limit},
            )
        )
        tracks: list[int] = []
        for track in body["tracks"]:
            index = self.catalog.by_id.get(track["track_id"])
            if index is None:
                raise LiveError(f"track {track['track_id']!r} is not in the default catalog")
            tracks.append(index)
        return Served(
            recommendation_id=body["recommendation_id"],
            arm=body["strategy"],
            propensity=float(body.get("propensity", 1.0)),
            comfort=bool(body["comfort_boost"]),
            tracks=tracks,
        )

    def feedback(
        self, listener_id: int, served: Served, track: int, event: str, listen_ratio: float
    ) -> float:
        user_id, headers = self.users[listener_id]
        track_id = self.catalog.tracks[track].track_id
        reward = self._ok(
            self._call(
                "POST",
                "/feedback/reward",
                headers=headers,
                json={
                    "user_id": user_id,
                    "recommendation_id": served.recommendation_id,
                    "track_id": track_id,
                    "event": event,
                    "listen_ratio": listen_ratio,
                },
            )
        )
        self._ok(
            self._call(
                "POST",
                f"/learning/weights/{user_id}",
                headers=headers,
                json={"action": "feedback", "track_id": track_id, "feedback": event},
            )
        )
        return float(reward["reward"])


@contextmanager
def live_client(base_url: str, *, timeout: float = 15.0) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout) as client:
        yield client
