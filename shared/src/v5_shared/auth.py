"""Bearer-token verification. Only identity signs tokens (Ed25519 private key); every service
verifies them with the public key, so a compromised non-identity replica cannot mint tokens."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBearer

from .settings import ConfigurationError, Settings

ALGORITHM = "EdDSA"
BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    expires_at: float


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers=BEARER_CHALLENGE)


class TokenVerifier:
    """Verifies access tokens, remembering recent good ones so that a listener's repeated
    calls cost one signature check per token rather than one per request."""

    def __init__(self, settings: Settings, cache_size: int = 50_000) -> None:
        # Parsed once: PyJWT would otherwise parse the PEM on every verification.
        key = serialization.load_pem_public_key(settings.public_key_pem().encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigurationError("JWT_PUBLIC_KEY must be an Ed25519 public key")
        self._key = key
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_seconds
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self._cache_size = cache_size

    def verify(self, token: str) -> Principal:
        now = time.time()
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at + self._leeway > now:
                self._cache.move_to_end(token)
                return cached
            del self._cache[token]
            raise unauthorized("token expired")
        principal = self._decode(token)
        self._cache[token] = principal
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal

    def _decode(self, token: str) -> Principal:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("token expired") from exc
        except jwt.InvalidTokenError as exc:
            raise unauthorized("invalid token") from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise unauthorized("invalid token")
        return Principal(user_id=subject, expires_at=float(claims["exp"]))


class BearerPrincipal(HTTPBearer):
    """The caller, from the Bearer token: HTTPBearer's OpenAPI security scheme, with the
    check done in the same single dependency (this runs on every request, and one
    dependency with no model to build is measurably cheaper than two)."""

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        token = token.strip()
        # A missing or non-Bearer header is answered by us, as 401 with the challenge
        # header (HTTPBearer's own answer would be a 403).
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("not authenticated")
        verifier: TokenVerifier = request.app.state.token_verifier
        return verifier.verify(token)


current_principal = BearerPrincipal(
    auto_error=False, scheme_name="HTTPBearer", description="An access token from /auth/token"
)

CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def ensure_same_user(principal: Principal, user_id: str) -> None:
    """Object-level authorization: a user may act only on their own user_id."""
    if principal.user_id != user_id:
        raise HTTPException(status_code=403, detail="forbidden: that user_id is not yours")


# OpenAPI "responses" for an operation scoped to the caller's own user_id.
USER_SCOPED_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, malformed, tampered or expired token"},
    403: {"description": "another user's user_id or recommendation_id"},
}
