"""Secrets at rest: Fernet (AES-128-CBC with HMAC-SHA256) keyed from ``AUTH_ENCRYPTION_KEY``.

The setting is any string; HKDF-SHA256 turns it into the 32 bytes Fernet needs, with a purpose
label, so the same setting could key other purposes without sharing a key.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from app.core.errors import AppError

PURPOSE = b"workflow-hub/integration-secrets/v1"


class SecretsUnreadable(AppError):
    status = 500
    code = "integration_secrets_unreadable"
    detail = "Stored integration secrets cannot be decrypted with the configured key."


class SecretBox:
    """Seals and opens a small JSON object of secrets."""

    def __init__(self, key: SecretStr) -> None:
        raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(
            key.get_secret_value().encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def seal(self, values: dict[str, str]) -> str:
        """Return the encrypted token of ``values``."""
        return self._fernet.encrypt(json.dumps(values, sort_keys=True).encode()).decode()

    def open(self, token: str) -> dict[str, str]:
        """Return the secrets sealed in ``token``.

        Raises:
            SecretsUnreadable: the token was sealed with another key or is corrupt.
        """
        try:
            data = json.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError) as exc:
            raise SecretsUnreadable() from exc
        if not isinstance(data, dict):
            raise SecretsUnreadable()
        return {str(k): str(v) for k, v in data.items()}


@lru_cache(maxsize=4)
def _box(key: str) -> SecretBox:
    return SecretBox(SecretStr(key))


def secret_box(key: SecretStr) -> SecretBox:
    """Return the (cached) box for ``key``."""
    return _box(key.get_secret_value())
