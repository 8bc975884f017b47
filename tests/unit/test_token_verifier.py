import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import HTTPException

from identity_service.domain import access_token_claims
from v5_shared.auth import TokenVerifier
from v5_shared.keys import generate_development_keys
from v5_shared.settings import Settings


@pytest.fixture
def keys(tmp_path: Path) -> tuple[object, Settings]:
    private, public, _ = generate_development_keys(tmp_path)
    key = serialization.load_pem_private_key(private.read_bytes(), password=None)
    return key, Settings(jwt_public_key_file=public)


def _sign(key: object, **overrides: object) -> str:
    claims = access_token_claims("alice", issuer="v5-identity", audience="v5-api", ttl_seconds=60)
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="EdDSA")  # type: ignore[arg-type]


def _rejects(verifier: TokenVerifier, token: str) -> HTTPException:
    with pytest.raises(HTTPException) as info:
        verifier.verify(token)
    assert info.value.status_code == 401
    assert info.value.headers == {"WWW-Authenticate": "Bearer"}
    return info.value


def test_valid_token_gives_its_subject(keys: tuple[object, Settings]) -> None:
    key, settings = keys
    verifier = TokenVerifier(settings)
    principal = verifier.verify(_sign(key))
    assert principal.user_id == "alice"
    # The second check comes from the cache and gives the same answer.
    assert verifier.verify(_sign(key)).user_id == "alice"


def test_expired_token_is_rejected(keys: tuple[object, Settings]) -> None:
    key, settings = keys
    past = int(time.time()) - 3600
    error = _rejects(TokenVerifier(settings), _sign(key, iat=past - 60, nbf=past - 60, exp=past))
    assert "expired" in str(error.detail)


def test_wrong_audience_issuer_and_missing_subject_are_rejected(
    keys: tuple[object, Settings],
) -> None:
    key, settings = keys
    verifier = TokenVerifier(settings)
    _rejects(verifier, _sign(key, aud="someone-else"))
    _rejects(verifier, _sign(key, iss="mallory"))
    _rejects(verifier, _sign(key, sub=None))


def test_token_from_another_key_is_rejected(keys: tuple[object, Settings]) -> None:
    _, settings = keys
    _rejects(TokenVerifier(settings), _sign(Ed25519PrivateKey.generate()))


def test_alg_none_and_tampered_tokens_are_rejected(keys: tuple[object, Settings]) -> None:
    key, settings = keys
    verifier = TokenVerifier(settings)
    unsigned = jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, None, algorithm="none")
    _rejects(verifier, unsigned)
    header, _payload, signature = _sign(key).split(".")
    forged_payload = _sign(key, sub="mallory").split(".")[1]
    _rejects(verifier, f"{header}.{forged_payload}.{signature}")
    _rejects(verifier, "not-a-token")


def test_cached_token_still_expires(keys: tuple[object, Settings]) -> None:
    key, settings = keys
    verifier = TokenVerifier(settings.model_copy(update={"jwt_leeway_seconds": 0}))
    now = int(time.time())
    token = _sign(key, iat=now - 10, nbf=now - 10, exp=now + 1)
    assert verifier.verify(token).user_id == "alice"
    time.sleep(1.1)
    _rejects(verifier, token)
