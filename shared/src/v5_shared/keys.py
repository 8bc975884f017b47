"""Ed25519 key pairs for signing (identity) and verifying (everyone) access tokens."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .settings import DEVELOPMENT_KEY_MARKER

PRIVATE_KEY_NAME = "jwt_private.pem"
PUBLIC_KEY_NAME = "jwt_public.pem"


def generate_development_keys(directory: Path) -> tuple[Path, Path, bool]:
    """Write a key pair into `directory` unless one is there; return the paths and whether
    new keys were made. The files are marked, so production mode refuses them."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path = directory / PRIVATE_KEY_NAME
    public_path = directory / PUBLIC_KEY_NAME
    if private_path.exists() and public_path.exists():
        return private_path, public_path, False
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    header = f"{DEVELOPMENT_KEY_MARKER}\n"
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(header + private_pem)
    public_path.write_text(header + public_pem)
    return private_path, public_path, True
