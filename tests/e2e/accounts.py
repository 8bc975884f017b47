"""Accounts for end-to-end tests, made through the public API."""

from __future__ import annotations

import uuid

import httpx


def new_user_id(prefix: str = "u") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def register_and_login(api: httpx.Client, user_id: str | None = None) -> tuple[str, str]:
    user_id = user_id or new_user_id()
    password = f"pw-{uuid.uuid4().hex}"
    created = api.post("/api/v1/v5/auth/register", json={"user_id": user_id, "password": password})
    assert created.status_code == 201, created.text
    token = api.post("/api/v1/v5/auth/token", json={"user_id": user_id, "password": password})
    assert token.status_code == 200, token.text
    return user_id, token.json()["access_token"]


class Listener:
    """A registered listener with a token, and shortcuts to the public API."""

    def __init__(self, api: httpx.Client) -> None:
        self.api = api
        self.user_id, token = register_and_login(api)
        self.headers = {"Authorization": f"Bearer {token}"}

    def say(self, message: str, **headers: str) -> httpx.Response:
        return self.api.post(
            "/api/v1/v5/conversation/continue",
            json={"user_id": self.user_id, "message": message},
            headers={**self.headers, **headers},
        )

    def recommend(self, **body: object) -> httpx.Response:
        return self.api.post(
            "/api/v1/v5/recommendation/adaptive",
            json={"user_id": self.user_id, **body},
            headers=self.headers,
        )

    def status(self) -> httpx.Response:
        return self.api.get(f"/api/v1/v5/session/{self.user_id}/status", headers=self.headers)

    def weights(self) -> httpx.Response:
        return self.api.get(f"/api/v1/v5/learning/weights/{self.user_id}", headers=self.headers)

    def adjust(self, body: dict[str, object], **headers: str) -> httpx.Response:
        return self.api.post(
            f"/api/v1/v5/learning/weights/{self.user_id}",
            json=body,
            headers={**self.headers, **headers},
        )

    def reward(self, **body: object) -> httpx.Response:
        return self.api.post(
            "/api/v1/v5/feedback/reward",
            json={"user_id": self.user_id, **body},
            headers=self.headers,
        )
