"""Conversation sessions in Redis: the sliding window of turns, the entity context with
recency decay, and the mood trajectory. One Lua script applies a turn, so concurrent turns
of one listener on different replicas are all counted and the window stays exact and in
order. Every key expires after SESSION_TTL_SECONDS of inactivity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis

from .idempotency import IDEMPOTENCY_TTL_SECONDS, IdempotencyRequest, redis_key

WINDOW_TURNS = 10
TRAJECTORY_POINTS = 20
# Each turn multiplies earlier entity weights by this; a mention adds 1.
CONTEXT_DECAY = 0.8
# Below this an entity is forgotten, which bounds the context's size.
CONTEXT_FLOOR = 0.01

_KIND_PREFIX = {"artists": "a:", "genres": "g:", "moods": "m:"}
_PREFIX_KIND = {v: k for k, v in _KIND_PREFIX.items()}


def session_keys(user_id: str) -> list[str]:
    # The {user_id} hash tag keeps a user's keys in one slot, should Redis become a cluster.
    base = f"v5:s:{{{user_id}}}"
    return [f"{base}:meta", f"{base}:window", f"{base}:ctx", f"{base}:traj"]


_APPLY_TURN = """
local meta, window, ctx, traj, idem = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local candidate_id, now, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local window_size, decay, floor = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local max_points, turn_rest, point_rest = tonumber(ARGV[7]), ARGV[8], ARGV[9]
local fingerprint, idem_ttl = ARGV[10], tonumber(ARGV[11])
local mentions = cjson.decode(ARGV[12])

if idem ~= '' then
  local stored = redis.call('GET', idem)
  if stored then
    local record = cjson.decode(stored)
    if record['fp'] ~= fingerprint then return {'conflict'} end
    return {'replay', record['snap']}
  end
end

local started = redis.call('HMGET', meta, 'session_id', 'created_at')
local session_id, created_at = started[1], started[2]
if not session_id then
  -- No live session (first message, or the last one expired): start a new one.
  redis.call('DEL', window, ctx, traj)
  session_id, created_at = candidate_id, now
  redis.call('HSET', meta, 'session_id', session_id, 'created_at', now, 'turns', 0)
end
local turn = redis.call('HINCRBY', meta, 'turns', 1)
redis.call('HSET', meta, 'last_active_at', now)

-- turn_rest / point_rest are JSON objects without their opening brace; the turn number is
-- only known here, so it is put in front.
local window_length = redis.call('RPUSH', window, '{"turn":' .. turn .. ',' .. turn_rest)
redis.call('LTRIM', window, -window_size, -1)

-- Decay every entity, forget the faint ones, add the mentions: computed here and written
-- back with one HSET (and at most one HDEL), not one command per entity.
local fields = redis.call('HGETALL', ctx)
local weights, forgotten = {}, {}
for i = 1, #fields, 2 do
  local weight = tonumber(fields[i + 1]) * decay
  if weight < floor then forgotten[fields[i]] = true else weights[fields[i]] = weight end
end
for _, name in ipairs(mentions) do
  weights[name] = (weights[name] or 0) + 1
  forgotten[name] = nil
end
local dropped, pairs_out = {}, {}
for name in pairs(forgotten) do dropped[#dropped + 1] = name end
for name, weight in pairs(weights) do
  pairs_out[#pairs_out + 1] = name
  pairs_out[#pairs_out + 1] = string.format('%.6g', weight)
end
if #dropped > 0 then redis.call('HDEL', ctx, unpack(dropped)) end
if #pairs_out > 0 then redis.call('HSET', ctx, unpack(pairs_out)) end

if point_rest ~= '' then
  redis.call('RPUSH', traj, '{"turn":' .. turn .. ',' .. point_rest)
  redis.call('LTRIM', traj, -max_points, -1)
end

for _, key in ipairs({meta, window, ctx, traj}) do
  redis.call('EXPIRE', key, ttl)
end

local snapshot = {
  session_id, turn, math.min(window_length, window_size), created_at, pairs_out,
  redis.call('LRANGE', traj, 0, -1),
}
if idem ~= '' then
  -- Encoded only for the replay record; the caller gets the snapshot as a plain reply.
  local encoded = cjson.encode(snapshot)
  redis.call('SET', idem, cjson.encode({fp = fingerprint, snap = encoded}), 'EX', idem_ttl)
end
return {'applied', snapshot}
"""


@dataclass(frozen=True, slots=True)
class WeightedName:
    name: str
    weight: float


@dataclass
class SessionContext:
    artists: list[WeightedName] = field(default_factory=list)
    genres: list[WeightedName] = field(default_factory=list)
    moods: list[WeightedName] = field(default_factory=list)

    def as_maps(self) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
        return (
            {w.name: w.weight for w in self.artists},
            {w.name: w.weight for w in self.genres},
            {w.name: w.weight for w in self.moods},
        )

    @property
    def empty(self) -> bool:
        return not (self.artists or self.genres or self.moods)


@dataclass(frozen=True)
class TurnSnapshot:
    """The session right after a turn: all a response needs, and what a replay returns."""

    session_id: str
    turn: int
    window: int
    created_at: str
    context: SessionContext
    points: list[dict[str, Any]]


@dataclass
class SessionState:
    session_id: str | None = None
    turns: int = 0
    created_at: str | None = None
    last_active_at: str | None = None
    ttl_seconds: int | None = None
    window: list[dict[str, Any]] = field(default_factory=list)
    context: SessionContext = field(default_factory=SessionContext)
    points: list[dict[str, Any]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.session_id is not None


class TurnConflict(Exception):
    """The Idempotency-Key was used before with another message."""


def _context_from_pairs(pairs: list[Any]) -> SessionContext:
    context = SessionContext()
    for i in range(0, len(pairs) - 1, 2):
        raw_name = pairs[i].decode() if isinstance(pairs[i], bytes) else str(pairs[i])
        raw_weight = pairs[i + 1]
        weight = float(raw_weight.decode() if isinstance(raw_weight, bytes) else raw_weight)
        kind = _PREFIX_KIND.get(raw_name[:2])
        if kind is None:
            continue
        getattr(context, kind).append(WeightedName(raw_name[2:], round(weight, 4)))
    for kind in _KIND_PREFIX:
        getattr(context, kind).sort(key=lambda w: (-w.weight, w.name))
    return context


def _as_list(value: Any) -> list[Any]:
    # cjson encodes an empty Lua table as {}; it is an empty list here.
    return value if isinstance(value, list) else []


def _decode_snapshot(snapshot: list[Any] | str | bytes) -> TurnSnapshot:
    """From the script's reply (a list) or from a replay record (the same list as JSON)."""
    parts = orjson.loads(snapshot) if isinstance(snapshot, str | bytes) else snapshot
    session_id, turn, window, created_at, pairs, points = parts
    return TurnSnapshot(
        session_id=_text(session_id),
        turn=int(turn),
        window=int(window),
        created_at=_text(created_at),
        context=_context_from_pairs(_as_list(pairs)),
        points=[orjson.loads(p) for p in _as_list(points)],
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_READ = """
local extra, value = '[]', false
if tonumber(ARGV[1]) > 0 then
  local items = redis.call('LRANGE', KEYS[5], 0, tonumber(ARGV[1]) - 1)
  if #items > 0 then extra = cjson.encode(items) end
end
if KEYS[6] ~= '' then value = redis.call('GET', KEYS[6]) end
-- Lists come back as one JSON text each (window entries and points are JSON already):
-- one bulk reply to parse instead of hundreds, and one orjson call for each.
local function json_array(key)
  return '[' .. table.concat(redis.call('LRANGE', key, 0, -1), ',') .. ']'
end
return {
  redis.call('HGETALL', KEYS[1]), json_array(KEYS[2]), redis.call('HGETALL', KEYS[3]),
  json_array(KEYS[4]), redis.call('TTL', KEYS[1]), extra, value,
}
"""


@dataclass(frozen=True, slots=True)
class SessionRead:
    """The session, with the head of another list and one value of the same user's, read in
    the same atomic script."""

    session: SessionState
    extra_list: list[str]
    value: bytes | None


def _pairs_to_dict(pairs: list[Any]) -> dict[Any, Any]:
    return dict(zip(pairs[::2], pairs[1::2], strict=True))


class SessionStore:
    def __init__(self, redis: Redis, *, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._apply = redis.register_script(_APPLY_TURN)
        self._read = redis.register_script(_READ)

    async def apply_turn(
        self,
        user_id: str,
        *,
        candidate_session_id: str,
        now_iso: str,
        turn_fields: dict[str, Any],
        point_fields: dict[str, Any] | None,
        mentions: dict[str, list[str]],
        idempotency: IdempotencyRequest | None,
    ) -> tuple[TurnSnapshot, bool]:
        """Apply one turn atomically; return the snapshot and whether it was a replay."""
        keys = session_keys(user_id)
        keys.append(redis_key(user_id, idempotency.key) if idempotency else "")
        names = [_KIND_PREFIX[kind] + name for kind, items in mentions.items() for name in items]
        turn_rest = orjson.dumps(turn_fields).decode()[1:]
        point_rest = orjson.dumps(point_fields).decode()[1:] if point_fields else ""
        result = await self._apply(
            keys=keys,
            args=[
                candidate_session_id,
                now_iso,
                self._ttl,
                WINDOW_TURNS,
                CONTEXT_DECAY,
                CONTEXT_FLOOR,
                TRAJECTORY_POINTS,
                turn_rest,
                point_rest,
                idempotency.fingerprint if idempotency else "",
                IDEMPOTENCY_TTL_SECONDS,
                orjson.dumps(names).decode(),
            ],
        )
        outcome = result[0].decode() if isinstance(result[0], bytes) else result[0]
        if outcome == "conflict":
            raise TurnConflict
        return _decode_snapshot(result[1]), outcome == "replay"

    async def read(self, user_id: str) -> SessionState:
        return (await self.read_with(user_id)).session

    async def read_with(
        self, user_id: str, *, list_key: str = "", list_length: int = 0, value_key: str = ""
    ) -> SessionRead:
        """The session, the first ``list_length`` items of ``list_key`` and the value at
        ``value_key`` (keys of this user's, in the same hash slot), in one round trip."""
        keys = [*session_keys(user_id), list_key, value_key]
        # One script: a single command to send and parse, and atomic like MULTI.
        meta, window, ctx, traj, ttl, extra, value = await self._read(
            keys=keys, args=[max(list_length, 1) if list_key else 0]
        )
        return SessionRead(
            self._state(_pairs_to_dict(meta), orjson.loads(window), ctx, orjson.loads(traj), ttl),
            orjson.loads(extra),
            value or None,
        )

    @staticmethod
    def _state(
        meta: dict[bytes, bytes], window: Any, ctx_pairs: list[Any], traj: Any, ttl: Any
    ) -> SessionState:
        if not meta:
            return SessionState()
        decoded = {k.decode(): v.decode() for k, v in meta.items()}
        return SessionState(
            session_id=decoded.get("session_id"),
            turns=int(decoded.get("turns", 0)),
            created_at=decoded.get("created_at"),
            last_active_at=decoded.get("last_active_at"),
            ttl_seconds=int(ttl) if ttl and ttl > 0 else None,
            window=window,
            context=_context_from_pairs(ctx_pairs),
            points=traj,
        )

    async def delete(self, user_id: str) -> None:
        await self._redis.delete(*session_keys(user_id))
