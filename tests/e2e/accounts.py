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
