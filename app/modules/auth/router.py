"""REST routes of the auth module: login, refresh, logout."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.core.db import DbSession, own_transaction
from app.core.security import CurrentSettings, CurrentUser
from app.modules.auth import service
from app.modules.auth.schemas import (
    LoginRequest,
    LogoutMobileRequest,
    RefreshRequest,
    TokenPair,
)
from app.modules.auth.service import IssuedTokens

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", response_model=TokenPair)
async def login(
    body: LoginRequest, request: Request, session: DbSession, settings: CurrentSettings
) -> TokenPair:
    """Log in with email and password, optionally binding a push device to the session."""
    address = request.client.host if request.client else "unknown"
    # The attempt is counted in a short transaction of its own, committed before the password
    # is checked and before this request's session takes a connection: a failed login stays
    # counted although the request rolls back, and no login ever holds two connections.
    async with own_transaction() as own:
        attempt = await service.count_login_attempt(
            own, security=settings.security, email=body.email, address=address
        )
    tokens = await service.login(
        session,
        settings=settings,
        email=body.email,
        password=body.password,
        attempt=attempt,
        device=body.device.to_contract() if body.device else None,
        organization_id=body.organization_id,
    )
    return _pair(tokens)


@router.post("/refresh", response_model=TokenPair)
async def refresh(body: RefreshRequest, session: DbSession, settings: CurrentSettings) -> TokenPair:
    """Trade a refresh token for a new pair; a token works once, and reuse ends the session."""
    tokens = await service.refresh(session, settings=settings, refresh_token=body.refresh_token)
    return _pair(tokens)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(principal: CurrentUser, session: DbSession) -> Response:
    """End the current session: its access and refresh tokens stop working at once."""
    await service.revoke_session(session, session_id=principal.session_id, reason="logout")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/logout-mobile", status_code=status.HTTP_204_NO_CONTENT)
async def logout_mobile(
    principal: CurrentUser, session: DbSession, body: LogoutMobileRequest | None = None
) -> Response:
    """End the current session and release the push device bound to it at login.

    A ``device_token`` that is not this session's is refused (403 ``device_not_bound``) and
    the session stays live: a caller can never release another user's device.
    """
    await service.revoke_session(
        session,
        session_id=principal.session_id,
        reason="logout",
        device_token=body.device_token if body else None,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _pair(tokens: IssuedTokens) -> TokenPair:
    return TokenPair(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
    )
