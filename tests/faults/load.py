"""Steady background load through the gateway for the fault-injection tests, and the checks
that every acknowledged write had exactly one effect.

A few worker threads, each owning some listeners (so that each listener's requests are
sequential and their effects can be predicted exactly), send a mix of GETs (catalog, session
status) and POSTs with an Idempotency-Key (conversation turns, weight feedback, rewards,
recommendations, logins) at a fixed overall rate.

- A GET is sent once: what the gateway answers is what a client sees (nginx itself may try
  another replica; the client does not).
- A POST that gets 502, 503, 504 or no answer at all is sent again with the same key until
  it succeeds or RETRY_DEADLINE_SECONDS pass, as a careful client would.

Every attempt is recorded with its send time (time.monotonic), duration and outcome, so a
test can ask what happened inside a fault window.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.e2e.accounts import new_user_id

# Longer than any deadline a test checks, so that a hang is measured rather than cut short.
REQUEST_TIMEOUT_SECONDS = 10.0
RETRY_PAUSE_SECONDS = 0.2
RETRY_DEADLINE_SECONDS = 30.0
RETRYABLE_STATUSES = frozenset({502, 503, 504})
WINDOW_TURNS = 10

API = "/api/v1/v5"

# Relative frequency of each operation in the mix.
MIX: dict[str, int] = {
    "genres": 8,
    "stats": 8,
    "artists": 7,
    "track": 7,
    "status": 15,
    "turn": 22,
    "feedback": 15,
    "reward": 8,
    "recommend": 5,
    "login": 5,
}

PHRASES = (
    "play some jazz",
    "I'm feeling a bit low today",
    "something upbeat for running",
    "I love soul and funk",
    "not happy at all, put on some blues",
    "calm ambient music please",
    "feeling great, more pop",
    "some classical for reading",
)
FEEDBACK = ("like", "skip", "save", "dislike", "complete")
EVENTS = ("like", "skip", "play", "save", "complete", "dislike")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One HTTP request as the client saw it."""

    op: str
    method: str
    user_id: str
    key: str | None
    number: int  # 1 for the first attempt of a request, 2 for its first retry, ...
    sent: float
    elapsed: float
    status: int | None  # None: no HTTP answer (connection failed, reset or timed out)
    error: str | None = None
    replay: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def answered(self) -> float:
        return self.sent + self.elapsed

    def overlaps(self, start: float, end: float) -> bool:
        return self.sent <= end and self.answered >= start

    def describe(self, origin: float = 0.0) -> str:
        outcome = self.status if self.status is not None else self.error
        return (
            f"{self.method} {self.op} #{self.number} at +{self.sent - origin:.2f}s "
            f"-> {outcome} in {self.elapsed * 1000:.0f} ms"
        )


@dataclass
class LoadUser:
    """A listener of the load, and every write of theirs that was acknowledged."""

    user_id: str
    password: str
    headers: dict[str, str]
    recommendation_id: str
    track_ids: list[str]
    arm: str
    # (Idempotency-Key, message, turn number in the response), in the order sent.
    turns: list[tuple[str, str, int]] = field(default_factory=list)
    # (Idempotency-Key, adjustment_count in the response, request body).
    feedback: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    # (Idempotency-Key, alpha + beta of the arm's posterior in the response).
    rewards: list[tuple[str, float]] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)
    sequence: int = 0


def _register(client: httpx.Client, user_id: str, password: str) -> str:
    body = {"user_id": user_id, "password": password}
    created = client.post(f"{API}/auth/register", json=body)
    assert created.status_code == 201, created.text
    token = client.post(f"{API}/auth/token", json=body)
    assert token.status_code == 200, token.text
    return str(token.json()["access_token"])


def provision_users(gateway_url: str, count: int, prefix: str = "load") -> list[LoadUser]:
    """Listeners registered through the API, each with one recommendation to reward."""
    users = []
    with httpx.Client(base_url=gateway_url, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        for _ in range(count):
            user_id, password = new_user_id(prefix), f"pw-{uuid.uuid4().hex}"
            headers = {"Authorization": f"Bearer {_register(client, user_id, password)}"}
            rec = client.post(
                f"{API}/recommendation/adaptive",
                json={"user_id": user_id, "limit": 5},
                headers=headers,
            )
            assert rec.status_code == 200, rec.text
            body = rec.json()
            users.append(
                LoadUser(
                    user_id=user_id,
                    password=password,
                    headers=headers,
                    recommendation_id=body["recommendation_id"],
                    track_ids=[t["track_id"] for t in body["tracks"]],
                    arm=body["strategy"],
                )
            )
    return users


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class BackgroundLoad:
    """The load, run by worker threads between start() and stop() (or as a context manager)."""

    def __init__(
        self,
        gateway_url: str,
        users: Sequence[LoadUser],
        *,
        rate: float = 60.0,
        workers: int = 6,
        retry_deadline: float = RETRY_DEADLINE_SECONDS,
        seed: int = 5,
    ) -> None:
        assert users, "the load needs listeners"
        self.gateway_url = gateway_url
        self.users = list(users)
        self.rate = rate
        self.workers = min(workers, len(self.users))
        self.retry_deadline = retry_deadline
        self.seed = seed
        self._attempts: list[Attempt] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # POSTs that never succeeded, answers that contradict the request, crashed workers.
        self.unfinished: list[str] = []
        self.mismatches: list[str] = []
        self.crashed: list[str] = []
        self.started_at = 0.0
        self.stopped_at = 0.0
        self._ops: dict[str, Callable[[httpx.Client, LoadUser, random.Random], None]] = {
            "genres": lambda c, u, r: self._get(c, u, "genres", f"{API}/catalog/genres"),
            "stats": lambda c, u, r: self._get(c, u, "stats", f"{API}/catalog/stats"),
            "artists": lambda c, u, r: self._get(
                c, u, "artists", f"{API}/catalog/artists?limit=20&offset={r.randrange(100)}"
            ),
            "track": lambda c, u, r: self._get(
                c, u, "track", f"{API}/catalog/tracks/{r.choice(u.track_ids)}"
            ),
            "status": self._status,
            "turn": self._turn,
            "feedback": self._feedback,
            "reward": self._reward,
            "recommend": self._recommend,
            "login": self._login,
        }

    # running -------------------------------------------------------------------------------
    def start(self) -> BackgroundLoad:
        self.started_at = time.monotonic()
        for index in range(self.workers):
            thread = threading.Thread(
                target=self._work,
                args=(index, self.users[index :: self.workers]),
                name=f"load-{index}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop sending new requests; POSTs being retried carry on until done."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.retry_deadline + REQUEST_TIMEOUT_SECONDS + 5)
            if thread.is_alive():
                self.crashed.append(f"{thread.name} did not stop")
        self.stopped_at = time.monotonic()

    def __enter__(self) -> BackgroundLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _work(self, index: int, users: list[LoadUser]) -> None:
        rng = random.Random(self.seed * 1000 + index)
        ops, weights = list(MIX), list(MIX.values())
        interval = self.workers / self.rate
        next_at = time.monotonic() + rng.random() * interval
        turn = 0
        try:
            with httpx.Client(base_url=self.gateway_url, timeout=REQUEST_TIMEOUT_SECONDS) as client:
                while not self._stop.wait(max(0.0, next_at - time.monotonic())):
                    user = users[turn % len(users)]
                    turn += 1
                    self._ops[rng.choices(ops, weights)[0]](client, user, rng)
                    # Behind schedule (slow answers during a fault): carry on at the rate
                    # from now rather than sending a burst to catch up.
                    next_at = max(next_at + interval, time.monotonic())
        except Exception:
            self.crashed.append(traceback.format_exc())

    # one request ---------------------------------------------------------------------------
    def _send(
        self,
        client: httpx.Client,
        method: str,
        op: str,
        user: LoadUser,
        path: str,
        *,
        key: str | None = None,
        number: int = 1,
        body: dict[str, Any] | None = None,
        auth: bool = True,
    ) -> tuple[Attempt, httpx.Response | None]:
        headers = dict(user.headers) if auth else {}
        if key is not None:
            headers["Idempotency-Key"] = key
        sent = time.monotonic()
        response: httpx.Response | None = None
        error = None
        try:
            response = client.request(method, path, json=body, headers=headers)
        except httpx.TransportError as exc:
            error = type(exc).__name__
        attempt = Attempt(
            op=op,
            method=method,
            user_id=user.user_id,
            key=key,
            number=number,
            sent=sent,
            elapsed=time.monotonic() - sent,
            status=None if response is None else response.status_code,
            error=error,
            replay=response is not None and response.headers.get("idempotent-replay") == "true",
        )
        with self._lock:
            self._attempts.append(attempt)
        return attempt, response

    def _get(self, client: httpx.Client, user: LoadUser, op: str, path: str) -> Any:
        attempt, response = self._send(client, "GET", op, user, path)
        return response.json() if attempt.ok and response is not None else None

    def _post(
        self,
        client: httpx.Client,
        user: LoadUser,
        op: str,
        path: str,
        body: dict[str, Any],
        *,
        auth: bool = True,
    ) -> Any:
        key = f"{op}-{uuid.uuid4().hex}"
        first = time.monotonic()
        number = 0
        while True:
            number += 1
            attempt, response = self._send(
                client, "POST", op, user, path, key=key, number=number, body=body, auth=auth
            )
            if attempt.ok and response is not None:
                return key, response.json()
            retryable = attempt.status is None or attempt.status in RETRYABLE_STATUSES
            if not retryable or time.monotonic() - first > self.retry_deadline:
                self.unfinished.append(
                    f"{op} {key} of {user.user_id}: last answer "
                    f"{attempt.status or attempt.error} after {number} attempts"
                )
                return key, None
            time.sleep(RETRY_PAUSE_SECONDS)

    # the operations ------------------------------------------------------------------------
    def _status(self, client: httpx.Client, user: LoadUser, _rng: random.Random) -> None:
        body = self._get(client, user, "status", f"{API}/session/{user.user_id}/status")
        if body is not None and body.get("user_id") != user.user_id:
            self.mismatches.append(f"status of {user.user_id} answered for {body.get('user_id')}")

    def _turn(self, client: httpx.Client, user: LoadUser, rng: random.Random) -> None:
        user.sequence += 1
        message = f"{rng.choice(PHRASES)} (#{user.sequence})"
        key, body = self._post(
            client,
            user,
            "turn",
            f"{API}/conversation/continue",
            {"user_id": user.user_id, "message": message},
        )
        if body is not None:
            user.turns.append((key, message, int(body["turn"])))

    def _feedback(self, client: httpx.Client, user: LoadUser, rng: random.Random) -> None:
        request = {
            "action": "feedback",
            "track_id": rng.choice(user.track_ids),
            "feedback": rng.choice(FEEDBACK),
        }
        key, body = self._post(
            client, user, "feedback", f"{API}/learning/weights/{user.user_id}", request
        )
        if body is not None:
            if body.get("user_id") != user.user_id:
                self.mismatches.append(f"weights of {user.user_id} answered for {body}")
            user.feedback.append((key, int(body["adjustment_count"]), request))

    def _reward(self, client: httpx.Client, user: LoadUser, rng: random.Random) -> None:
        event = rng.choice(EVENTS)
        body: dict[str, Any] = {
            "user_id": user.user_id,
            "recommendation_id": user.recommendation_id,
            "track_id": rng.choice(user.track_ids),
            "event": event,
        }
        if event == "play":
            body["listen_ratio"] = round(rng.random(), 3)
        key, answer = self._post(client, user, "reward", f"{API}/feedback/reward", body)
        if answer is not None:
            if answer.get("strategy") != user.arm:
                self.mismatches.append(f"reward of {user.user_id} answered for arm {answer}")
            posterior = answer["posterior"]
            user.rewards.append((key, float(posterior["alpha"]) + float(posterior["beta"])))

    def _recommend(self, client: httpx.Client, user: LoadUser, rng: random.Random) -> None:
        _key, body = self._post(
            client,
            user,
            "recommend",
            f"{API}/recommendation/adaptive",
            {"user_id": user.user_id, "limit": rng.choice((5, 10))},
        )
        if body is not None:
            user.recommendations.append(body["recommendation_id"])

    def _login(self, client: httpx.Client, user: LoadUser, _rng: random.Random) -> None:
        self._post(
            client,
            user,
            "login",
            f"{API}/auth/token",
            {"user_id": user.user_id, "password": user.password},
            auth=False,
        )

    # what happened -------------------------------------------------------------------------
    @property
    def attempts(self) -> list[Attempt]:
        with self._lock:
            return list(self._attempts)

    def failed(self, predicate: Callable[[Attempt], bool] = lambda a: True) -> list[Attempt]:
        return [a for a in self.attempts if not a.ok and predicate(a)]

    def problems(self) -> list[str]:
        """Anything that is wrong whatever the fault: crashed workers, POSTs that never
        succeeded, answers for another listener, and statuses that no fault excuses (any
        4xx: the load's requests are all valid)."""
        odd = [
            a.describe(self.started_at)
            for a in self.attempts
            if a.status is not None and 400 <= a.status < 500
        ]
        return [*self.crashed, *self.unfinished, *self.mismatches, *odd]

    def summary(self) -> str:
        attempts = self.attempts
        duration = max(1e-9, (self.stopped_at or time.monotonic()) - self.started_at)
        first = [a for a in attempts if a.number == 1]
        outcomes = Counter(str(a.status or a.error) for a in attempts)
        latencies = [a.elapsed * 1000 for a in attempts]
        return (
            f"{len(first)} requests in {duration:.0f} s ({len(first) / duration:.0f}/s), "
            f"{len(attempts) - len(first)} POST retries, "
            f"{sum(a.replay for a in attempts)} replays; outcomes {dict(outcomes)}; "
            f"latency p50 {percentile(latencies, 0.5):.0f} ms, "
            f"p99 {percentile(latencies, 0.99):.0f} ms, max {max(latencies, default=0):.0f} ms"
        )


def spike(gateway_url: str, users: Sequence[LoadUser], seconds: float = 1.5) -> BackgroundLoad:
    """A traffic peak: one client per listener, each sending its next request as soon as
    the last is answered, for `seconds`. It makes every replica take as many pooled
    connections at once as it ever does, so a pool that kept a broken connection shows it."""
    load = BackgroundLoad(gateway_url, users, rate=1e6, workers=len(users))
    with load:
        time.sleep(seconds)
    return load


def describe(attempts: Iterable[Attempt], origin: float, limit: int = 15) -> str:
    """A readable list for an assertion message: counts by outcome, then the first few."""
    items = list(attempts)
    counts = Counter(f"{a.method} {a.op} -> {a.status or a.error}" for a in items)
    lines = [f"{n} x {what}" for what, n in counts.most_common()]
    lines += [a.describe(origin) for a in items[:limit]]
    return "\n".join(lines)


def _read(client: httpx.Client, path: str, headers: dict[str, str]) -> Any:
    # The cluster is meant to be healthy when effects are checked; a short grace absorbs a
    # replica that is still warming up, and anything longer is reported by the caller.
    deadline = time.monotonic() + 5
    while True:
        response = client.get(path, headers=headers)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response.json() if response.status_code == 200 else response.text
        time.sleep(0.2)


def verify_effects(
    gateway_url: str, users: Iterable[LoadUser], *, sessions_last: bool = True
) -> list[str]:
    """Each acknowledged write had exactly one effect: the session's turn count, window,
    adjustment_count, reward count and the arm's posterior are what the acknowledged keys
    predict. `sessions_last=False` leaves out the session checks (for sessions that may
    expire between turns)."""
    problems: list[str] = []
    with httpx.Client(base_url=gateway_url, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        for user in users:
            who = user.user_id
            status = _read(client, f"{API}/session/{who}/status", user.headers)
            weights = _read(client, f"{API}/learning/weights/{who}", user.headers)
            if not isinstance(status, dict) or not isinstance(weights, dict):
                problems.append(f"{who}: cannot read the state: {status!r} {weights!r}")
                continue
            if sessions_last:
                problems += _check_turns(user, status)
            counts = [count for _, count, _ in user.feedback]
            if counts != list(range(1, len(counts) + 1)):
                problems.append(f"{who}: feedback answers counted {counts}")
            for name, value in (
                ("status adjustment_count", status["adjustment_count"]),
                ("weights adjustment_count", weights["adjustment_count"]),
            ):
                if value != len(user.feedback):
                    problems.append(f"{who}: {name} {value} != {len(user.feedback)} acknowledged")
            problems += _check_rewards(user, status)
    return problems


def _check_turns(user: LoadUser, status: dict[str, Any]) -> list[str]:
    who, acked = user.user_id, len(user.turns)
    problems = []
    numbers = [turn for _, _, turn in user.turns]
    if numbers != list(range(1, acked + 1)):
        problems.append(f"{who}: turn answers numbered {numbers}")
    if status["turns"] != acked:
        problems.append(f"{who}: session has {status['turns']} turns, {acked} acknowledged")
    window = [(t["turn"], t["message"]) for t in status["window"]]
    expected = [(turn, message) for _, message, turn in user.turns[-WINDOW_TURNS:]]
    if window != expected:
        problems.append(f"{who}: window {window} != last acknowledged {expected}")
    return problems


def _check_rewards(user: LoadUser, status: dict[str, Any]) -> list[str]:
    who, acked = user.user_id, len(user.rewards)
    problems = []
    if status["rewards"]["count"] != acked:
        problems.append(f"{who}: {status['rewards']['count']} rewards, {acked} acknowledged")
    if acked:
        # alpha + beta grows by exactly 1 per reward: the answers step by one from the first.
        totals = [total for _, total in user.rewards]
        start = totals[0]
        if any(abs(t - (start + i)) > 1e-6 for i, t in enumerate(totals)):
            problems.append(f"{who}: posterior alpha+beta after each reward {totals}")
        arm = status["bandit"][user.arm]
        final = arm["alpha"] + arm["beta"]
        if abs(final - (start + acked - 1)) > 1e-6:
            problems.append(f"{who}: arm {user.arm} alpha+beta {final}, {start + acked - 1} due")
    return problems


# A data store that is away is answered with 503s, and fast ones: this long at most.
FAST_503_SECONDS = 2.0


def outage_violations(
    *,
    load: BackgroundLoad,
    origin: float,
    peaks: Sequence[tuple[str, BackgroundLoad]],
    services_before: Any,
    services_after: Any,
    gateway_url: str,
    users: Sequence[LoadUser],
    report: Callable[[str], None],
) -> list[str]:
    """What every data-store outage test requires beyond its own timings: the spikes around
    it were clean, every failure was a fast 503, no service had to restart, and every
    acknowledged write has exactly one effect."""
    violations: list[str] = []
    for when, peak in peaks:
        report(f"peak {when}: {peak.summary()}")
        if peak.failed() or peak.problems():
            violations.append(
                f"peak {when}:\n{describe(peak.failed(), peak.started_at)}\n{peak.problems()}"
            )
    # A missing data store is a 503, never a 500 or a gateway error, and always a fast one.
    wrong = load.failed(lambda a: a.status != 503)
    if wrong:
        violations.append("failures other than 503:\n" + describe(wrong, origin))
    slow_503 = [a for a in load.attempts if a.status == 503 and a.elapsed >= FAST_503_SECONDS]
    if slow_503:
        violations.append("503s slower than 2 s:\n" + describe(slow_503, origin))
    # Recovery came from the services' own reconnects, not from restarts.
    if services_after != services_before:
        violations.append(f"services restarted: {services_before} -> {services_after}")
    violations += load.problems()
    lost = verify_effects(gateway_url, users)
    report(f"acknowledged writes with other than exactly one effect: {len(lost)}")
    return violations + lost
