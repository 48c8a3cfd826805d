"""A firebase-admin credential that needs no Google account: for the sandbox's fake FCM.

firebase-admin's own tests do the same: a ``credentials.Base`` whose Google credential "refreshes"
by setting a fixed token, so the SDK's real encoding, HTTP and error mapping run without network
access to Google.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import google.auth.credentials
from firebase_admin import credentials


class _StaticToken(google.auth.credentials.Credentials):
    def __init__(self, token: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._static = token

    def refresh(self, request: Any) -> None:
        self.token = self._static
        # google-auth compares expiry with a naive UTC now.
        self.expiry = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None)


class StaticTokenCredential(credentials.Base):  # type: ignore[misc]
    """Sends ``Authorization: Bearer <token>`` and never calls Google."""

    def __init__(self, token: str = "sandbox-token") -> None:
        super().__init__()
        self._credential = _StaticToken(token)

    def get_credential(self) -> google.auth.credentials.Credentials:
        return self._credential
