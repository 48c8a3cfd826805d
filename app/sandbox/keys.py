"""The demo organisation's RSA key for Oracle bearer JWTs, shared by the seed and the sandbox.

It is created on first use in ``SANDBOX_JWT_KEY_FILE`` (``var/`` by default, never committed),
readable by its owner only. The seed stores it, encrypted, as the demo organisation's Oracle
key; the sandbox verifies tokens with its public half.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from app.core.settings import PROJECT_ROOT


def _resolve(path: Path) -> Path:
    return path if path.is_absolute() else PROJECT_ROOT / path


def demo_private_key_pem(path: Path) -> str:
    """Return the PEM private key in ``path``, creating it (mode 0600) when missing."""
    path = _resolve(path)
    if path.exists():
        return path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text()
    with os.fdopen(fd, "w") as handle:
        handle.write(pem)
    return pem


def public_key_of(private_key_pem: str) -> RSAPublicKey:
    """Return the public half of a PEM RSA private key."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the sandbox JWT key must be an RSA key")
    return key.public_key()
