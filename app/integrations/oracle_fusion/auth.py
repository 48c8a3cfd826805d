"""Authentication to Oracle Fusion: an integration account (basic) or a per-user bearer JWT.

Fusion trusts a JWT signed by a registered client: "JWT is only a way to share the user name to
the server". The token names the acting user in ``prn`` (and ``sub``), so a BPM action runs as
that user. :class:`JwtSigner` holds an organisation's private key and signs one short-lived
token per user, reused until shortly before it expires.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Generator
from functools import lru_cache

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

RENEW_BEFORE_SECONDS = 30
MAX_CACHED_TOKENS = 1_024
"""Tokens a signer keeps, the most recently used: enough for the users acting within a token's
lifetime and for a sweep, which signs for a user's two Oracle syncs one after the other. A
fixed number, so that a process's memory does not grow with the organisation's size."""


@lru_cache(maxsize=64)
def load_rsa_private_key(pem: str) -> RSAPrivateKey:
    """Load a PEM RSA private key; raises ``ValueError`` for anything else.

    Loading validates the key's primes, which costs tens of milliseconds of CPU; every Oracle
    client built for an organisation (one per sync of one user) loads its stored key, so a
    process loads each key once and keeps it (the signer holds the key object anyway).
    """
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (TypeError, ValueError) as exc:
        raise ValueError("not a PEM private key without a passphrase") from exc
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("the JWT key must be an RSA key (RS256)")
    if key.key_size < 2048:
        raise ValueError("the RSA key must have at least 2048 bits")
    return key


class JwtSigner:
    """Signs RS256 bearer tokens for the users of one organisation."""

    def __init__(
        self,
        private_key_pem: str,
        *,
        issuer: str,
        ttl_seconds: int = 300,
        key_id: str | None = None,
        clock: Callable[[], float] = time.time,
        max_cached: int = MAX_CACHED_TOKENS,
    ) -> None:
        self._key = load_rsa_private_key(private_key_pem)
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds
        self.key_id = key_id
        self.clock = clock
        self.max_cached = max_cached
        self._tokens: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def token_for(self, username: str) -> str:
        """Return a valid token naming ``username``, signing a new one when needed."""
        now = self.clock()
        with self._lock:
            cached = self._tokens.get(username)
            if cached is not None and cached[1] - RENEW_BEFORE_SECONDS > now:
                self._tokens.move_to_end(username)
                return cached[0]
        issued = int(now)
        expires = issued + self.ttl_seconds
        claims = {
            "iss": self.issuer,
            "prn": username,
            "sub": username,
            "iat": issued,
            "exp": expires,
            "jti": uuid.uuid4().hex,
        }
        headers = {"x5t": self.key_id} if self.key_id else None
        token = jwt.encode(claims, self._key, algorithm="RS256", headers=headers)
        with self._lock:
            self._tokens[username] = (token, float(expires))
            self._tokens.move_to_end(username)
            # The least recently used go first: past the limit, or expired (the newest is not).
            tokens = self._tokens
            while len(tokens) > self.max_cached or next(iter(tokens.values()))[1] <= now:
                tokens.popitem(last=False)
        return token

    def cached(self) -> int:
        """Return how many tokens are kept."""
        return len(self._tokens)

    def auth_for(self, username: str) -> httpx.Auth:
        """Return an httpx auth that sends a bearer JWT for ``username``."""
        return BearerJwtAuth(self, username)


class BearerJwtAuth(httpx.Auth):
    """``Authorization: Bearer <jwt>`` for one user, renewed as it nears expiry."""

    def __init__(self, signer: JwtSigner, username: str) -> None:
        self.signer = signer
        self.username = username

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.signer.token_for(self.username)}"
        yield request
