"""The security suite, end to end against the real cluster: forged and misplaced tokens,
service ports reached around the gateway, brute force on login and registration, mass
assignment, password hashes kept out of responses and logs, and the headers and bodies of
every kind of answer, the gateway's own errors included.

Rate limits belong to the whole test session (one cluster for every e2e module). The tests
that exhaust one do it only for buckets nobody else uses: fresh accounts, and client
addresses of their own on the loopback network (Linux routes all of 127.0.0.0/8 to the
loopback interface, so a client bound to 127.a.b.c reaches the gateway as that address,
and nginx keys its per-address limit on it). The session's 127.0.0.1 allowance is never
spent here."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import re
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from identity_service.settings import IdentitySettings
from v5_cluster.cluster import LocalCluster
from v5_cluster.config import SERVICES, ClusterConfig
from v5_cluster.render import service_environment

from .accounts import Listener, new_user_id, register_and_login

REGISTER = "/api/v1/v5/auth/register"
TOKEN = "/api/v1/v5/auth/token"
GENRES = "/api/v1/v5/catalog/genres"
TRACK = "v5t-000001"
ACCOUNT_LIMITED = "too many attempts for this account"
GATEWAY_LIMITED = "rate limited"
# The only operations a replica serves without a token (API.md: everything but auth/*).
PUBLIC_OPERATIONS = {("POST", REGISTER), ("POST", TOKEN)}


def _weights_path(user_id: str) -> str:
    return f"/api/v1/v5/learning/weights/{user_id}"


# --- helpers ------------------------------------------------------------------------------


def _fresh_address() -> str:
    """A loopback address no other test uses, so its gateway allowance is this test's own."""
    a, b, c = secrets.token_bytes(3)
    return f"127.{a % 200 + 50}.{b}.{c % 250 + 2}"


def _spoofed(n: int) -> dict[str, str]:
    """Headers a client may send to claim another address; the gateway must ignore them."""
    ip = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
    return {
        "X-Forwarded-For": ip,
        "X-Real-IP": ip,
        "Forwarded": f"for={ip}",
        "X-Client-IP": ip,
        "True-Client-IP": ip,
    }


def _send_all(
    base_url: str, jobs: list[tuple[str, list[dict[str, Any]]]]
) -> tuple[list[httpx.Response], float]:
    """Each job is a source address and the requests one keep-alive connection sends from it;
    the jobs run at the same time. Returns every response and the seconds the whole took."""

    def run(job: tuple[str, list[dict[str, Any]]]) -> list[httpx.Response]:
        address, requests = job
        transport = httpx.HTTPTransport(local_address=address)
        with httpx.Client(base_url=base_url, timeout=15.0, transport=transport) as client:
            return [client.request(**request) for request in requests]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        chunks = list(pool.map(run, jobs))
    return [r for chunk in chunks for r in chunk], time.monotonic() - started


def _retry_after(response: httpx.Response) -> int:
    value = response.headers["retry-after"]
    assert value.isdigit(), value
    assert int(value) >= 1
    return int(value)


def _account_limit(config: ClusterConfig) -> tuple[float, int]:
    """Identity's per-account allowance as the replicas see it: their settings come from the
    environment this process passed on, overridden by the cluster's service_env."""
    env = service_environment(config, "identity", config.replica_ports("identity")[0])
    overrides: dict[str, Any] = {
        name: env[name.upper()]
        for name in ("auth_account_rate_per_second", "auth_account_burst")
        if name.upper() in env
    }
    settings = IdentitySettings(**overrides)
    return settings.auth_account_rate_per_second, settings.auth_account_burst


def _admitted_at_most(rate: float, burst: int, seconds: float) -> int:
    # What a limiter of `rate` per second with bursts of `burst` can let through in this long,
    # plus one for the request that starts the burst and one for timing at the edges.
    return burst + math.ceil(rate * seconds) + 2


def _assert_401(response: httpx.Response, what: str) -> None:
    assert response.status_code == 401, (what, response.status_code, response.text)
    assert response.headers["www-authenticate"].startswith("Bearer"), what
    assert response.headers["content-type"].startswith("application/json"), what
    assert isinstance(response.json()["detail"], str), what


@dataclass(frozen=True)
class Answer:
    label: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @classmethod
    def of(cls, label: str, response: httpx.Response) -> Answer:
        return cls(
            label, response.status_code, list(response.headers.multi_items()), response.content
        )

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]


def _raw(port: int, request: bytes, label: str) -> Answer:
    """What nginx answers to bytes no HTTP client library would send."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines)]
    return Answer(label, int(status_line.split()[1]), headers, body)


# --- tokens -------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _hmac_token(secret: bytes, claims: dict[str, Any], alg: str = "HS256", **header: Any) -> str:
    # By hand: PyJWT refuses to use a PEM key as an HMAC secret, which is the attack itself.
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = f"{_segment({'alg': alg, 'typ': 'JWT', **header})}.{_segment(claims)}"
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


@dataclass(frozen=True)
class Forge:
    """What a test needs to make tokens that differ from a real one in one property only."""

    owner: Listener
    victim: Listener
    real_token: str
    template: dict[str, Any]  # the claims identity put in a real token
    private_key: ed25519.Ed25519PrivateKey
    public_pem: bytes
    attacker_key: ed25519.Ed25519PrivateKey
    attacker_rsa: rsa.RSAPrivateKey

    def claims(self, **changes: Any) -> dict[str, Any]:
        """Fresh claims for the owner exactly as identity issues them; a change of None
        removes the claim."""
        now = int(time.time())
        claims = {**self.template, "iat": now, "nbf": now, "exp": now + 3600}
        claims["jti"] = uuid.uuid4().hex
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(claims, self.private_key, algorithm="EdDSA", headers=header or None)


@pytest.fixture(scope="module")
def forge(api: httpx.Client, cluster: LocalCluster) -> Forge:
    owner, victim = Listener(api), Listener(api)
    real_token = owner.headers["Authorization"].removeprefix("Bearer ")
    # The key files the cluster gives identity (private) and every service (public).
    env = service_environment(
        cluster.config, "identity", cluster.config.replica_ports("identity")[0]
    )
    private = serialization.load_pem_private_key(
        Path(env["JWT_PRIVATE_KEY_FILE"]).read_bytes(), password=None
    )
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    return Forge(
        owner=owner,
        victim=victim,
        real_token=real_token,
        template=jwt.decode(real_token, options={"verify_signature": False}),
        private_key=private,
        public_pem=Path(env["JWT_PUBLIC_KEY_FILE"]).read_bytes(),
        attacker_key=ed25519.Ed25519PrivateKey.generate(),
        attacker_rsa=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


def _unsigned(forge: Forge, alg: str) -> str:
    return f"{_segment({'alg': alg, 'typ': 'JWT'})}.{_segment(forge.claims())}."


def _tampered(forge: Forge, **changes: Any) -> str:
    # A real token's header and signature around a payload with one claim changed.
    header, _payload, signature = forge.real_token.split(".")
    claims = jwt.decode(forge.real_token, options={"verify_signature": False})
    claims.update(changes)
    return f"{header}.{_segment(claims)}.{signature}"


def _raw_public_key(forge: Forge) -> bytes:
    key = serialization.load_pem_public_key(forge.public_pem)
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _embedded_jwk(forge: Forge) -> str:
    # The attacker's own public key in the header (the "jwk" header injection): a verifier
    # that trusted it would accept anything the attacker signs.
    public = forge.attacker_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64(public)}
    return jwt.encode(forge.claims(), forge.attacker_key, algorithm="EdDSA", headers={"jwk": jwk})


def _now() -> int:
    return int(time.time())


@dataclass(frozen=True)
class TokenCase:
    name: str
    make: Callable[[Forge], str]
    # Whose user-scoped operation the token is tried on: the user it claims to be.
    claims_victim: bool = False


BAD_TOKENS = [
    TokenCase("alg-none", lambda f: _unsigned(f, "none")),
    TokenCase("alg-None", lambda f: _unsigned(f, "None")),
    TokenCase("alg-NONE", lambda f: _unsigned(f, "NONE")),
    TokenCase(
        "alg-none-with-real-signature",
        lambda f: f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{f.real_token.split('.', 1)[1]}",
    ),
    TokenCase("hs256-public-pem-as-secret", lambda f: _hmac_token(f.public_pem, f.claims())),
    TokenCase(
        "hs256-public-pem-stripped-as-secret",
        lambda f: _hmac_token(f.public_pem.strip(), f.claims()),
    ),
    TokenCase(
        "hs512-public-pem-as-secret", lambda f: _hmac_token(f.public_pem, f.claims(), "HS512")
    ),
    TokenCase(
        "hs256-raw-public-key-as-secret", lambda f: _hmac_token(_raw_public_key(f), f.claims())
    ),
    TokenCase(
        "hs256-empty-secret-kid-dev-null",
        lambda f: _hmac_token(b"", f.claims(), kid="../../../../../../dev/null"),
    ),
    TokenCase(
        "expired",
        lambda f: f.sign(f.claims(iat=_now() - 7200, nbf=_now() - 7200, exp=_now() - 3600)),
    ),
    TokenCase("not-yet-valid-nbf", lambda f: f.sign(f.claims(nbf=_now() + 3600))),
    TokenCase("issued-in-the-future-iat", lambda f: f.sign(f.claims(iat=_now() + 3600))),
    TokenCase("wrong-issuer", lambda f: f.sign(f.claims(iss="mallory-identity"))),
    TokenCase("wrong-audience", lambda f: f.sign(f.claims(aud="some-other-api"))),
    TokenCase("audience-list-without-ours", lambda f: f.sign(f.claims(aud=["a", "b"]))),
    TokenCase("missing-subject", lambda f: f.sign(f.claims(sub=None))),
    TokenCase("empty-subject", lambda f: f.sign(f.claims(sub=""))),
    TokenCase("missing-expiry", lambda f: f.sign(f.claims(exp=None))),
    TokenCase("missing-issued-at", lambda f: f.sign(f.claims(iat=None))),
    TokenCase("missing-issuer", lambda f: f.sign(f.claims(iss=None))),
    TokenCase("missing-audience", lambda f: f.sign(f.claims(aud=None))),
    TokenCase("tampered-subject", lambda f: _tampered(f, sub=f.victim.user_id), claims_victim=True),
    TokenCase("tampered-expiry", lambda f: _tampered(f, exp=_now() + 10 * 365 * 86400)),
    TokenCase("signature-stripped", lambda f: f.real_token.rsplit(".", 1)[0] + "."),
    TokenCase("signature-truncated", lambda f: f.real_token[:-4]),
    TokenCase(
        "another-ed25519-key",
        lambda f: jwt.encode(f.claims(), f.attacker_key, algorithm="EdDSA"),
    ),
    TokenCase("rs256-another-key", lambda f: jwt.encode(f.claims(), f.attacker_rsa, "RS256")),
    TokenCase("embedded-jwk-header", _embedded_jwk),
    TokenCase("garbage", lambda _f: "garbage"),
    TokenCase("three-empty-parts", lambda _f: ".."),
    TokenCase("junk-segments", lambda _f: "eyJhbGciOi.eyJzdWIiOi.c2ln"),
    TokenCase("json-not-jwt", lambda _f: '{"sub":"alice"}'),
]


@pytest.mark.parametrize("case", BAD_TOKENS, ids=lambda c: c.name)
def test_bad_token_is_401_on_scoped_and_unscoped_operations(
    api: httpx.Client, forge: Forge, case: TokenCase
) -> None:
    token = case.make(forge)
    user = forge.victim if case.claims_victim else forge.owner
    headers = {"Authorization": f"Bearer {token}"}
    _assert_401(api.get(_weights_path(user.user_id), headers=headers), f"{case.name} scoped")
    _assert_401(api.get(GENRES, headers=headers), f"{case.name} unscoped")


def test_minted_token_with_every_property_right_is_accepted(
    api: httpx.Client, forge: Forge
) -> None:
    # The control for the cases above: the same construction, nothing wrong, is let in, so
    # each 401 there is for the one property that case breaks.
    headers = {"Authorization": f"Bearer {forge.sign(forge.claims())}"}
    scoped = api.get(_weights_path(forge.owner.user_id), headers=headers)
    assert scoped.status_code == 200, scoped.text
    assert scoped.json()["user_id"] == forge.owner.user_id
    assert api.get(GENRES, headers=headers).status_code == 200
    # And the real token identity issued.
    assert api.get(GENRES, headers=forge.owner.headers).status_code == 200


def test_token_outside_the_authorization_header_is_401(api: httpx.Client, forge: Forge) -> None:
    # Only the header counts: a token in a URL ends up in logs and browser histories, and a
    # cookie would make the API open to cross-site requests.
    token = forge.real_token
    scoped = _weights_path(forge.owner.user_id)
    places: list[tuple[str, dict[str, str], dict[str, str]]] = [
        ("query access_token", {"access_token": token}, {}),
        ("query token", {"token": token}, {}),
        ("query bearer", {"bearer": token}, {}),
        ("cookie", {}, {"Cookie": f"access_token={token}"}),
        ("other header", {}, {"X-Access-Token": token}),
        ("no Bearer scheme", {}, {"Authorization": token}),
    ]
    for where, params, headers in places:
        _assert_401(api.get(scoped, params=params, headers=headers), f"{where} scoped")
        _assert_401(api.get(GENRES, params=params, headers=headers), f"{where} unscoped")
    assert api.get(scoped, headers={"Authorization": f"Bearer {token}"}).status_code == 200


# --- around the gateway -------------------------------------------------------------------


def _fill(path: str, user_id: str) -> str:
    return re.sub(
        r"\{[^}]+\}",
        lambda m: {"{user_id}": user_id, "{track_id}": TRACK}.get(m.group(0), "x"),
        path,
    )


def test_service_ports_refuse_calls_without_a_valid_token(
    cluster: LocalCluster, listener: Listener
) -> None:
    unsigned = f"{_segment({'alg': 'none'})}.{_segment({'sub': listener.user_id})}."
    checked: dict[str, int] = {}
    for service in SERVICES:
        for port in cluster.config.replica_ports(service):
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0) as replica:
                # Health may answer without a token: the port is not public.
                assert replica.get("/livez").status_code == 200
                # Every operation the replica documents, so a new one is covered unasked.
                document = replica.get("/openapi.json").json()
                operations = [
                    (method.upper(), path)
                    for path, item in document["paths"].items()
                    for method in item
                ]
                for method, path in operations:
                    if (method, path) in PUBLIC_OPERATIONS:
                        continue
                    url = _fill(path, listener.user_id)
                    body: dict[str, Any] | None = {} if method in ("POST", "PUT") else None
                    what = f"{service}:{port} {method} {path}"
                    _assert_401(replica.request(method, url, json=body), f"{what} no token")
                    _assert_401(
                        replica.request(
                            method, url, json=body, headers={"Authorization": f"Bearer {unsigned}"}
                        ),
                        f"{what} unsigned",
                    )
                    if method == "GET":
                        # The probe reaches a working operation: a real token gets in.
                        ok = replica.get(url, headers=listener.headers)
                        assert ok.status_code == 200, (what, ok.text)
                    checked[service] = checked.get(service, 0) + 1
                # The open operations are identity's, and only there.
                public = {op for op in operations if op in PUBLIC_OPERATIONS}
                assert public == (PUBLIC_OPERATIONS if service == "identity" else set())
    assert all(checked.get(s, 0) > 0 for s in SERVICES if s != "identity"), checked


def test_gateway_does_not_expose_replica_internals(cluster: LocalCluster) -> None:
    port = cluster.config.gateway_port
    for path in [
        "/livez",
        "/readyz",
        "/metrics",
        "/docs",
        "/redoc",
        "/api/v1/v5/catalog/../../../../metrics",
        "/api/v1/v5/catalog/%2e%2e/%2e%2e/%2e%2e/%2e%2e/metrics",
        "/api/v1/v5/catalog/..%2f..%2f..%2f..%2freadyz",
        "/api/v1/v5/learning/%2E%2E/%2E%2E/%2E%2E/%2E%2E/livez",
        "/_gateway_error/500",
    ]:
        # Over a socket, as written: an HTTP client library would resolve the dot segments
        # itself, and the traversal is the point.
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        answer = _raw(port, request.encode(), path)
        assert answer.status == 404, (path, answer.status, answer.body)
        assert json.loads(answer.body) == {"detail": "Not Found"}, path


# --- brute force --------------------------------------------------------------------------


@pytest.mark.parametrize("path", [TOKEN, REGISTER])
def test_auth_is_limited_per_real_address_whatever_forwarding_headers_say(
    cluster: LocalCluster, path: str
) -> None:
    config = cluster.config
    rate, burst = config.rate_limit_auth_rps, config.rate_limit_auth_burst
    address = _fresh_address()
    count = 3 * burst
    # Malformed bodies: the gateway counts them, identity answers 422 without hashing.
    requests: list[dict[str, Any]] = [
        {
            "method": "POST",
            "url": path,
            "content": b"{",
            "headers": {"content-type": "application/json", **_spoofed(n)},
        }
        for n in range(count)
    ]
    # One address, several connections: each request claims a different client.
    jobs = [(address, requests[i::8]) for i in range(8)]
    responses, seconds = _send_all(config.gateway_url, jobs)
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {422, 429}, set(statuses)
    limited = [r for r in responses if r.status_code == 429]
    assert limited, "a burst far above the per-address limit must be refused"
    for response in limited:
        assert GATEWAY_LIMITED in response.json()["detail"]
        _retry_after(response)
    # Had nginx keyed on a forwarded address, every request would have had a bucket of its
    # own and all would have passed.
    assert statuses.count(422) <= _admitted_at_most(rate, burst, seconds), (statuses, seconds)
    # Another real address is untouched by that exhaustion.
    [other], _ = _send_all(config.gateway_url, [(_fresh_address(), requests[:1])])
    assert other.status_code == 422, other.text


def _wrong_logins(user_id: str, count: int, first: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "method": "POST",
            "url": TOKEN,
            "json": {"user_id": user_id, "password": f"wrong-{n}"},
            "headers": _spoofed(first + n),
        }
        for n in range(count)
    ]


def test_login_is_limited_per_account_across_addresses(
    cluster: LocalCluster, api: httpx.Client
) -> None:
    config = cluster.config
    rate, burst = _account_limit(config)
    user_id, password = new_user_id("bf"), f"pw-{uuid.uuid4().hex}"
    assert api.post(REGISTER, json={"user_id": user_id, "password": password}).status_code == 201
    # 200 wrong passwords at once from 10 real addresses, 20 each: far under each address's
    # gateway allowance, so only a limit per account can stop them.
    attempts, addresses = 200, [_fresh_address() for _ in range(10)]
    per_address = attempts // len(addresses)
    assert per_address < config.rate_limit_auth_burst
    jobs = [
        (address, _wrong_logins(user_id, per_address, first=i * per_address))
        for i, address in enumerate(addresses)
    ]
    responses, seconds = _send_all(config.gateway_url, jobs)
    statuses = [r.status_code for r in responses]
    assert len(statuses) == attempts
    assert set(statuses) <= {401, 429}, set(statuses)
    assert not any("access_token" in r.text for r in responses), "no guess may yield a token"
    limited = [r for r in responses if r.status_code == 429]
    assert limited, "the account must be limited whichever address the guesses come from"
    retry = max(_retry_after(r) for r in limited)
    assert all(ACCOUNT_LIMITED in r.json()["detail"] for r in limited)
    assert statuses.count(401) <= _admitted_at_most(rate, burst, seconds), (statuses, seconds)

    # The limit is the account's, not the addresses': another account logs in from one of
    # them at once.
    other_id, other_password = new_user_id("bf"), f"pw-{uuid.uuid4().hex}"
    assert (
        api.post(REGISTER, json={"user_id": other_id, "password": other_password}).status_code
        == 201
    )
    transport = httpx.HTTPTransport(local_address=addresses[0])
    with httpx.Client(base_url=config.gateway_url, transport=transport) as client:
        other = client.post(TOKEN, json={"user_id": other_id, "password": other_password})
        assert other.status_code == 200, other.text

    # Once the account's whole allowance is back, the right password works.
    assert retry <= math.ceil(burst / rate) + 1
    time.sleep(burst / rate + 0.5)
    good = api.post(TOKEN, json={"user_id": user_id, "password": password})
    assert good.status_code == 200, good.text
    token = good.json()["access_token"]
    weights = api.get(_weights_path(user_id), headers={"Authorization": f"Bearer {token}"})
    assert weights.status_code == 200


def test_registration_is_limited_per_account(cluster: LocalCluster) -> None:
    config = cluster.config
    rate, burst = _account_limit(config)
    user_id = new_user_id("rg")
    attempts = 3 * burst
    jobs = [
        (
            _fresh_address(),
            [
                {
                    "method": "POST",
                    "url": REGISTER,
                    "json": {"user_id": user_id, "password": f"password-{i}-{n}"},
                    "headers": _spoofed(i * 100 + n),
                }
                for n in range(attempts // 6)
            ],
        )
        for i in range(6)
    ]
    responses, seconds = _send_all(config.gateway_url, jobs)
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409, 429}, set(statuses)
    assert statuses.count(201) == 1
    limited = [r for r in responses if r.status_code == 429]
    assert limited
    for response in limited:
        assert ACCOUNT_LIMITED in response.json()["detail"]
        _retry_after(response)
    admitted = statuses.count(201) + statuses.count(409)
    assert admitted <= _admitted_at_most(rate, burst, seconds), (statuses, seconds)


def test_account_limit_holds_on_replica_ports_without_the_gateway(
    cluster: LocalCluster, api: httpx.Client
) -> None:
    # Whoever reaches identity's replicas directly meets the same limit: it is kept in Redis,
    # shared by every replica, not in nginx.
    config = cluster.config
    rate, burst = _account_limit(config)
    user_id, _ = register_and_login(api, new_user_id("rp"))
    per_replica = 2 * burst

    def guesses(port: int) -> list[httpx.Response]:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15.0) as replica:
            return [
                replica.post(TOKEN, json={"user_id": user_id, "password": f"guess-{n}"})
                for n in range(per_replica)
            ]

    ports = config.replica_ports("identity")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(ports)) as pool:
        responses = [r for chunk in pool.map(guesses, ports) for r in chunk]
    seconds = time.monotonic() - started
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {401, 429}
    limited = [r for r in responses if r.status_code == 429]
    assert limited
    for response in limited:
        assert ACCOUNT_LIMITED in response.json()["detail"]
        _retry_after(response)
    assert statuses.count(401) <= _admitted_at_most(rate, burst, seconds), (statuses, seconds)


# --- mass assignment ----------------------------------------------------------------------


def test_unknown_fields_in_every_post_body_are_422_and_change_nothing(
    api: httpx.Client, listener: Listener
) -> None:
    uid = listener.user_id
    newcomer = new_user_id("ma")
    scoped = listener.headers
    cases: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        (REGISTER, {"user_id": newcomer, "password": "long enough", "is_admin": True}, {}),
        (REGISTER, {"user_id": newcomer, "password": "long enough", "password_hash": "x"}, {}),
        (REGISTER, {"user_id": newcomer, "password": "long enough", "created_at": "2000"}, {}),
        (TOKEN, {"user_id": uid, "password": "whatever", "scope": "admin"}, {}),
        ("/api/v1/v5/conversation/continue", {"user_id": uid, "message": "hi", "turn": 99}, scoped),
        (
            "/api/v1/v5/conversation/continue",
            {"user_id": uid, "message": "hi", "session_id": "someone-elses"},
            scoped,
        ),
        ("/api/v1/v5/recommendation/adaptive", {"user_id": uid, "strategy": "popular"}, scoped),
        (
            "/api/v1/v5/recommendation/adaptive",
            {"user_id": uid, "weights": {"popularity": 1.0}},
            scoped,
        ),
        (
            "/api/v1/v5/recommendation/adaptive",
            {"user_id": uid, "context": {"mood": "happy", "boost": 10}},
            scoped,
        ),
        (_weights_path(uid), {"action": "reset", "adjustment_count": 1000}, scoped),
        (
            _weights_path(uid),
            {"action": "explicit", "weights": {"novelty": 0.5}, "adjustment_count": 1000},
            scoped,
        ),
        (
            _weights_path(uid),
            {"action": "feedback", "track_id": TRACK, "feedback": "like", "adjustment_count": 0},
            scoped,
        ),
        # Not a field but a weight name: still refused, so the counter cannot be reached.
        (_weights_path(uid), {"action": "explicit", "weights": {"adjustment_count": 1}}, scoped),
        (_weights_path(uid), {"action": "reset", "user_id": "someone-else"}, scoped),
        (
            "/api/v1/v5/feedback/reward",
            {
                "user_id": uid,
                "recommendation_id": "r",
                "track_id": TRACK,
                "event": "like",
                "reward": 1.0,
            },
            scoped,
        ),
        (
            "/api/v1/v5/feedback/reward",
            {
                "user_id": uid,
                "recommendation_id": "r",
                "track_id": TRACK,
                "event": "like",
                "strategy": "popular",
                "posterior": {"alpha": 1e9, "beta": 0},
            },
            scoped,
        ),
    ]
    for path, body, headers in cases:
        response = api.post(path, json=body, headers=headers)
        assert response.status_code == 422, (path, body, response.status_code, response.text)
        assert isinstance(response.json()["detail"], list), (path, body)

    # Every POST operation of the public API has a case above.
    document = api.get("/openapi.json").json()
    posts = {path for path, item in document["paths"].items() if "post" in item}
    covered = {p.replace(uid, "{user_id}") for p, _, _ in cases}
    assert posts - covered == set()

    # Nothing happened: the account was not created, the listener is as new.
    assert (
        api.post(REGISTER, json={"user_id": newcomer, "password": "long enough"}).status_code == 201
    )
    weights = listener.weights().json()
    assert weights["adjustment_count"] == 0 and weights["updated_at"] is None
    status = listener.status().json()
    assert status["turns"] == 0 and status["rewards"]["count"] == 0
    # The counter still counts: one accepted change is exactly one.
    assert listener.adjust({"action": "reset"}).json()["adjustment_count"] == 1


# --- passwords and hashes -----------------------------------------------------------------


async def _gateway_flushed(logs: Path, request_ids: list[str]) -> None:
    # The gateway's access log is written in buffers, flushed every second.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = (logs / "gateway-access.log").read_text(errors="replace")
        if all(rid in text for rid in request_ids):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the gateway did not log the requests")


async def test_passwords_and_hashes_appear_in_no_response_and_no_log(
    cluster: LocalCluster,
) -> None:
    config = cluster.config
    password = f"Secret-{uuid.uuid4().hex}"
    wrong = f"Wrong-{uuid.uuid4().hex}"
    user_id, slow_user_id = new_user_id("pw"), new_user_id("pw")
    forbidden = [password.encode(), wrong.encode(), b"$argon2"]
    responses: list[httpx.Response] = []
    async with httpx.AsyncClient(base_url=config.gateway_url, timeout=15.0) as client:

        async def post(path: str, body: dict[str, Any]) -> httpx.Response:
            response = await client.post(path, json=body)
            responses.append(response)
            return response

        good = {"user_id": user_id, "password": password}
        assert (await post(REGISTER, good)).status_code == 201
        assert (await post(REGISTER, good)).status_code == 409
        assert (await post(REGISTER, {**good, "password_hash": "x"})).status_code == 422
        assert (await post(REGISTER, {"user_id": "!", "password": password})).status_code == 422
        assert (await post(TOKEN, good)).status_code == 200
        assert (await post(TOKEN, {"user_id": user_id, "password": wrong})).status_code == 401
        assert (await post(TOKEN, {**good, "extra": wrong})).status_code == 422

        # PostgreSQL logs statements slower than 250 ms (deploy/local's renderer): hold the
        # users table for longer than that while accounts are created, so that their INSERT,
        # which carries the password hash, is one of them. Registrations first, so that the
        # replicas' connections have the INSERT prepared and the wait falls on its execution.
        for _ in range(4):
            warm = {"user_id": new_user_id("pw"), "password": password}
            assert (await post(REGISTER, warm)).status_code == 201
        postgres_log = config.logs_dir / "postgres.log"
        logged_before = postgres_log.stat().st_size
        conn = await asyncpg.connect(config.database_url)
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE users IN EXCLUSIVE MODE")
                slow = [
                    asyncio.create_task(
                        post(REGISTER, {"user_id": f"{slow_user_id}{n}", "password": password})
                    )
                    for n in range(2)
                ]
                await asyncio.sleep(0.5)
        finally:
            await conn.close()
        assert [(await task).status_code for task in slow] == [201, 201]

    for response in responses:
        raw = response.content + "".join(f"{k}: {v}" for k, v in response.headers.items()).encode()
        for secret in forbidden:
            assert secret not in raw, (response.request.url, secret, response.text)

    await _gateway_flushed(config.logs_dir, [r.headers["x-request-id"] for r in responses])
    deadline = time.monotonic() + 5
    while b"INSERT INTO users" not in postgres_log.read_bytes()[logged_before:]:
        assert time.monotonic() < deadline, "PostgreSQL did not log the slow registration"
        await asyncio.sleep(0.1)
    files = [path for path in config.logs_dir.rglob("*") if path.is_file()]
    assert {"gateway-access.log", "postgres.log", "identity-0.log"} <= {p.name for p in files}
    for path in files:
        data = path.read_bytes()
        for secret in forbidden:
            assert secret not in data, (path.name, secret)


# --- headers and bodies of every kind of answer -------------------------------------------


def _first_429(label: str, responses: list[httpx.Response]) -> Answer:
    limited = [r for r in responses if r.status_code == 429]
    assert limited, f"{label}: the burst was not limited"
    return Answer.of(label, limited[0])


def _answers(
    cluster: LocalCluster, api: httpx.Client, listener: Listener, other: Listener
) -> Iterator[Answer]:
    config, port = cluster.config, cluster.config.gateway_port
    me = listener.headers
    yield Answer.of("200", api.get(GENRES, headers=me))
    yield Answer.of(
        "201", api.post(REGISTER, json={"user_id": new_user_id(), "password": "long enough"})
    )
    yield Answer.of("204", api.delete(f"/api/v1/v5/session/{listener.user_id}", headers=me))
    yield Answer.of("401 service", api.get(GENRES))
    yield Answer.of("401 login", api.post(TOKEN, json={"user_id": "nobody", "password": "x"}))
    yield Answer.of("403", api.get(_weights_path(other.user_id), headers=me))
    yield Answer.of("404 service", api.get("/api/v1/v5/catalog/tracks/no-such-track", headers=me))
    yield Answer.of("404 gateway", api.get("/no/such/path"))
    yield Answer.of("405 service", api.put(GENRES, headers=me))
    yield Answer.of("405 gateway", api.post("/openapi.json"))
    yield Answer.of(
        "409", api.post(REGISTER, json={"user_id": listener.user_id, "password": "long enough"})
    )
    yield Answer.of(
        "422", api.post(_weights_path(listener.user_id), json={"action": "x"}, headers=me)
    )
    yield Answer.of(
        "413",
        api.post(
            "/api/v1/v5/conversation/continue",
            content=b"x" * (65 * 1024),
            headers={**me, "content-type": "application/json"},
        ),
    )
    yield Answer.of("414", api.get(GENRES, params={"q": "x" * 10_000}, headers=me))
    yield Answer.of("431", api.get(GENRES, headers={**me, "X-Huge": "x" * 40_000}))
    # The gateway's 429, from an address of this test's own: twice what it admits in a second.
    allowance = config.rate_limit_auth_burst + config.rate_limit_auth_rps
    flood = [{"method": "POST", "url": TOKEN, "content": b"{"} for _ in range(2 * allowance)]
    address = _fresh_address()
    responses, _ = _send_all(config.gateway_url, [(address, flood[i::4]) for i in range(4)])
    yield _first_429("429 gateway", responses)
    # identity's 429, for one account.
    guesses = _wrong_logins(new_user_id("hd"), 3 * _account_limit(config)[1])
    responses, _ = _send_all(
        config.gateway_url, [(_fresh_address(), guesses[i::4]) for i in range(4)]
    )
    yield _first_429("429 account", responses)
    # Request lines and headers nginx cannot parse: it has no URI for these.
    close = b"Connection: close\r\n"
    yield _raw(port, b"GARBAGE\r\n\r\n", "400 garbage request line")
    yield _raw(port, b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n" + close + b"\r\n", "400 ..")
    yield _raw(port, b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", "414 raw")
    yield _raw(port, b"GET /healthz HTTP/1.1\r\n" + close + b"\r\n", "400 no Host")
    yield _raw(
        port,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: " + b"a" * 9000 + b"\r\n\r\n",
        "431/494 raw",
    )
    yield _raw(port, b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", "505")
    yield _raw(
        port,
        b"POST /api/v1/v5/auth/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        "501",
    )
    yield _raw(
        port,
        b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nRange: bytes=99999999-\r\n" + close + b"\r\n",
        "range past the end",
    )


def test_every_answer_carries_the_security_headers_and_no_trace_or_html(
    cluster: LocalCluster, api: httpx.Client, listener: Listener, other_listener: Listener
) -> None:
    seen: dict[str, int] = {}
    for answer in _answers(cluster, api, listener, other_listener):
        label = answer.label
        seen[label] = answer.status
        # Exactly one copy of each: the gateway's, never also the service's.
        assert answer.header("x-content-type-options") == ["nosniff"], label
        assert answer.header("cache-control") == ["no-store"], label
        assert answer.header("x-frame-options") == ["DENY"], label
        [csp] = answer.header("content-security-policy")
        assert "frame-ancestors 'none'" in csp, label
        assert len(answer.header("x-request-id")) == 1, label
        # No version for fingerprinting.
        assert all(not re.search(r"\d", v) for v in answer.header("server")), label
        text = answer.body.decode("utf-8", errors="replace")
        for marker in ("Traceback", 'File "', "<html", "<HTML", "<!DOCTYPE"):
            assert marker not in text, (label, text[:300])
        if answer.status == 204:
            assert answer.body == b"", label
            continue
        assert answer.header("content-type")[0].startswith("application/json"), label
        document = json.loads(answer.body)
        if answer.status >= 400:
            assert "detail" in document, label
            if answer.status == 429:
                assert int(answer.header("retry-after")[0]) >= 1, label
    expected = {
        "200": 200,
        "201": 201,
        "204": 204,
        "401 service": 401,
        "401 login": 401,
        "403": 403,
        "404 service": 404,
        "404 gateway": 404,
        "405 service": 405,
        "405 gateway": 405,
        "409": 409,
        "422": 422,
        "413": 413,
        "414": 414,
        "431": 431,
        "429 gateway": 429,
        "429 account": 429,
        "400 garbage request line": 400,
        "400 ..": 400,
        "414 raw": 414,
        "400 no Host": 400,
        "431/494 raw": 431,
        "505": 505,
        "501": 501,
        # Byte ranges are not served, so a Range header past the end changes nothing.
        "range past the end": 200,
    }
    assert seen == expected
