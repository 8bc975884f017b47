"""Stores served recommendations (impressions) in PostgreSQL in batches, off the request path:
a consumer group on the Redis stream that every recommendation replica writes to. A batch is
acknowledged only after its transaction commits, and entries left pending by a replica that
died are claimed after a while, so none is lost; storing is idempotent, so none is doubled."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import Any

import orjson
import redis.exceptions

from v5_shared import idempotency, learning_store
from v5_shared.datastores import DataStores
from v5_shared.domain.bandit import ARMS, prior_from_aggregate
from v5_shared.errors import DEPENDENCY_ERRORS
from v5_shared.learning_versions import mark_changed
from v5_shared.logging import get_logger
from v5_shared.recommendations import IMPRESSION_STREAM

log = get_logger(__name__)

GROUP = "learning"
# An entry pending this long belongs to a consumer that is gone: take it over.
CLAIM_IDLE_MS = 30_000
HOUSEKEEPING_SECONDS = 3600
# A data store that is down, or a stream that vanished (Redis restarted without it): wait
# a moment and set the group up again.
RECOVERABLE: tuple[type[Exception], ...] = (*DEPENDENCY_ERRORS, redis.exceptions.ResponseError)


class ImpressionConsumer:
    def __init__(
        self, stores: DataStores, *, batch_size: int, block_ms: int, linger_ms: int = 0
    ) -> None:
        self._stores = stores
        self._batch_size = batch_size
        self._block_ms = block_ms
        self._linger_seconds = linger_ms / 1000
        self._name = f"{socket.gethostname()}-{os.getpid()}"
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.stored = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="impression-consumer")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _ensure_group(self) -> None:
        try:
            await self._stores.redis.xgroup_create(IMPRESSION_STREAM, GROUP, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _run(self) -> None:
        last_housekeeping = 0.0
        group_ready = False
        while not self._stopping:
            try:
                if not group_ready:
                    await self._ensure_group()
                    group_ready = True
                drained = await self.drain_once()
                if 0 < drained < self._batch_size and self._linger_seconds > 0:
                    # A part-filled batch means little traffic: let more impressions gather
                    # rather than pay a transaction for each one.
                    await asyncio.sleep(self._linger_seconds)
                loop_time = asyncio.get_running_loop().time()
                if loop_time - last_housekeeping > HOUSEKEEPING_SECONDS:
                    last_housekeeping = loop_time
                    await self._housekeeping()
            except asyncio.CancelledError:
                raise
            except RECOVERABLE as exc:
                log.warning("impression_consumer_waiting", error=repr(exc))
                group_ready = False
                await asyncio.sleep(1.0)

    async def drain_once(self) -> int:
        """Claim abandoned entries, read new ones, store them; return how many were stored."""
        redis = self._stores.redis
        claimed: Any = await redis.xautoclaim(
            IMPRESSION_STREAM, GROUP, self._name, CLAIM_IDLE_MS, "0-0", count=self._batch_size
        )
        entries: list[tuple[Any, dict[Any, Any]]] = list(claimed[1]) if claimed else []
        if not entries:
            response: Any = await redis.xreadgroup(
                GROUP,
                self._name,
                {IMPRESSION_STREAM: ">"},
                count=self._batch_size,
                block=self._block_ms,
            )
            for _stream, stream_entries in response or []:
                entries.extend(stream_entries)
        if not entries:
            return 0
        impressions = []
        for _entry_id, fields in entries:
            raw = fields.get(b"impression") if fields else None
            if raw is not None:
                impressions.append(orjson.loads(raw))
        async with self._stores.transaction() as conn:
            aggregate = await learning_store.aggregate_posteriors(conn)
            priors = {arm: prior_from_aggregate(aggregate.get(arm)) for arm in ARMS}
            stored, new_posteriors = await learning_store.insert_impressions(
                conn, impressions, priors
            )
        await mark_changed(redis, new_posteriors)
        ids = [entry_id for entry_id, _ in entries]
        # Stored and acknowledged: nobody needs the entries any more, and deleting them keeps
        # the stream's memory to what is still in flight.
        async with redis.pipeline(transaction=True) as pipe:
            pipe.xack(IMPRESSION_STREAM, GROUP, *ids)
            pipe.xdel(IMPRESSION_STREAM, *ids)
            await pipe.execute()
        self.stored += stored
        return stored

    async def _housekeeping(self) -> None:
        async with self._stores.connection() as conn:
            expired = await idempotency.pg_expire(conn)
        if expired:
            log.info("idempotency_keys_expired", count=expired)
