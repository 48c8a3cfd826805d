"""Secrets at rest: Fernet (AES-128-CBC with HMAC-SHA256) keyed from ``AUTH_ENCRYPTION_KEY``.

The setting is any string; HKDF-SHA256 turns it into the 32 bytes Fernet needs, with a purpose
label, so the same setting could key other purposes without sharing a key. Keys that sealed
secrets before it (``AUTH_ENCRYPTION_KEYS_PREVIOUS``) still open them, through cryptography's
``MultiFernet``: a secret is always sealed with the current key, opened with any of them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from app.core.errors import AppError
from app.core.settings import SecuritySettings

PURPOSE = b"workflow-hub/integration-secrets/v1"


class SecretsUnreadable(AppError):
    """Stored secrets open with no configured key: a key was lost, or the token is corrupt."""

    status = 500
    code = "integration_secrets_unreadable"
    detail = "Stored integration secrets cannot be decrypted with any configured key."


def _fernet(key: SecretStr) -> Fernet:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(
        key.get_secret_value().encode()
    )
    return Fernet(base64.urlsafe_b64encode(raw))


class SecretBox:
    """Seals a small JSON object of secrets with the current key; opens it with any key."""

    def __init__(self, key: SecretStr, previous: Sequence[SecretStr] = ()) -> None:
        self._current = _fernet(key)
        self._fernet = MultiFernet([self._current, *(_fernet(k) for k in previous)])

    def __repr__(self) -> str:
        return "SecretBox(<keys hidden>)"

    def seal(self, values: dict[str, str]) -> str:
        """Return the token of ``values``, encrypted with the current key."""
        return self._fernet.encrypt(json.dumps(values, sort_keys=True).encode()).decode()

    def open(self, token: str) -> dict[str, str]:
        """Return the secrets sealed in ``token``.

        Raises:
            SecretsUnreadable: no configured key sealed the token, or it is corrupt.
        """
        try:
            data = json.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError) as exc:
            raise SecretsUnreadable() from exc
        if not isinstance(data, dict):
            raise SecretsUnreadable()
        return {str(k): str(v) for k, v in data.items()}

    def sealed_with_current_key(self, token: str) -> bool:
        """Return whether the current key alone opens ``token``."""
        try:
            self._current.decrypt(token.encode())
        except (InvalidToken, ValueError):
            return False
        return True

    def reseal(self, token: str) -> str:
        """Return ``token``'s secrets sealed again with the current key (``MultiFernet.rotate``).

        Raises:
            SecretsUnreadable: no configured key sealed the token, or it is corrupt.
        """
        try:
            return self._fernet.rotate(token.encode()).decode()
        except (InvalidToken, ValueError) as exc:
            raise SecretsUnreadable() from exc


@lru_cache(maxsize=4)
def _box(key: str, previous: tuple[str, ...]) -> SecretBox:
    return SecretBox(SecretStr(key), [SecretStr(k) for k in previous])


def secret_box(key: SecretStr, previous: Sequence[SecretStr] = ()) -> SecretBox:
    """Return the (cached) box that seals with ``key`` and also opens with ``previous``."""
    return _box(key.get_secret_value(), tuple(k.get_secret_value() for k in previous))


def configured_box(security: SecuritySettings) -> SecretBox:
    """Return the box of ``AUTH_ENCRYPTION_KEY`` and ``AUTH_ENCRYPTION_KEYS_PREVIOUS``."""
    return secret_box(security.encryption_key, security.previous_encryption_keys())
