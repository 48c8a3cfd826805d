"""The verified-token cache (app/core/security.py): a kept token skips PyJWT until its exp, and
nothing that failed, differs or was signed with another key gets through."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from app.core.security import (
    Principal,
    TokenExpired,
    TokenInvalid,
    VerifiedTokens,
    create_access_token,
)
from app.core.settings import SecuritySettings


@pytest.fixture
def security() -> SecuritySettings:
    return SecuritySettings(jwt_secret=SecretStr("k" * 40), access_token_ttl_seconds=600)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token PyJWT is asked to verify."""
    seen: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return seen


def principal() -> Principal:
    return Principal(uuid.uuid4(), uuid.uuid4(), "employee", "EMPLOYEE", uuid.uuid4())


def test_a_verified_token_is_not_verified_again(
    security: SecuritySettings, decodes: list[str]
) -> None:
    cache = VerifiedTokens()
    who = principal()
    token, _ = create_access_token(security, who)
    assert cache.verify(security, token) == who
    assert cache.verify(security, token) == who
    assert decodes == [token]


def test_a_kept_token_is_refused_from_its_exp_on(
    security: SecuritySettings, decodes: list[str]
) -> None:
    now = [time.time()]
    cache = VerifiedTokens(clock=lambda: now[0])
    token, ttl = create_access_token(security, principal())
    cache.verify(security, token)
    now[0] += ttl - 5
    cache.verify(security, token)
    now[0] += 5  # exp itself: PyJWT refuses it too (no leeway)
    with pytest.raises(TokenExpired):
        cache.verify(security, token)
    assert len(cache) == 0
    assert decodes == [token]


def test_failures_are_not_kept_and_a_changed_token_is_checked_anew(
    security: SecuritySettings, decodes: list[str]
) -> None:
    cache = VerifiedTokens()
    token, _ = create_access_token(security, principal())
    cache.verify(security, token)
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    for _ in range(2):
        with pytest.raises(TokenInvalid):
            cache.verify(security, tampered)
    assert decodes == [token, tampered, tampered]
    assert len(cache) == 1


def test_a_token_kept_under_one_key_is_checked_again_under_another(
    security: SecuritySettings, decodes: list[str]
) -> None:
    cache = VerifiedTokens()
    token, _ = create_access_token(security, principal())
    cache.verify(security, token)
    other = security.model_copy(update={"jwt_secret": SecretStr("o" * 40)})
    with pytest.raises(TokenInvalid):
        cache.verify(other, token)
    assert decodes == [token, token]


def test_the_least_recently_used_token_goes_first(
    security: SecuritySettings, decodes: list[str]
) -> None:
    cache = VerifiedTokens(size=2)
    first, second, third = (create_access_token(security, principal())[0] for _ in range(3))
    cache.verify(security, first)
    cache.verify(security, second)
    cache.verify(security, first)  # first is now the most recent
    cache.verify(security, third)  # second goes
    assert len(cache) == 2
    decodes.clear()
    cache.verify(security, first)
    cache.verify(security, third)
    assert decodes == []
    cache.verify(security, second)
    assert decodes == [second]
