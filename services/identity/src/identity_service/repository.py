"""Explicit SQL for accounts."""

from __future__ import annotations

from datetime import datetime

import asyncpg


class UserAlreadyExists(Exception):
    pass


async def insert_user(conn: asyncpg.Connection, user_id: str, password_hash: str) -> datetime:
    try:
        created_at: datetime = await conn.fetchval(
            "INSERT INTO users (user_id, password_hash) VALUES ($1, $2) RETURNING created_at",
            user_id,
            password_hash,
        )
    except asyncpg.UniqueViolationError as exc:
        raise UserAlreadyExists(user_id) from exc
    return created_at


async def password_hash_of(conn: asyncpg.Connection, user_id: str) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT password_hash FROM users WHERE user_id = $1", user_id
    )
    return value


async def replace_password_hash(conn: asyncpg.Connection, user_id: str, new_hash: str) -> None:
    await conn.execute("UPDATE users SET password_hash = $2 WHERE user_id = $1", user_id, new_hash)
