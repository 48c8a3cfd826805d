"""REST routes of the auth module: login, refresh, logout."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.core.db import DbSession, session_scope
from app.core.security import CurrentSettings, CurrentUser
from app.modules.auth import service
from app.modules.auth.errors import RefreshTokenReused
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
    # A failed login stays counted although this request's transaction rolls back: the
    # service records every attempt in a transaction of its own before checking it.
    tokens = await service.login(
        session,
        settings=settings,
        email=body.email,
        password=body.password,
        address=address,
        device=body.device.to_contract() if body.device else None,
        organization_id=body.organization_id,
    )
    return _pair(tokens)


@router.post("/refresh", response_model=TokenPair)
async def refresh(body: RefreshRequest, session: DbSession, settings: CurrentSettings) -> TokenPair:
    """Trade a refresh token for a new pair; a token works once, and reuse ends the session."""
    try:
        tokens = await service.refresh(session, settings=settings, refresh_token=body.refresh_token)
    except RefreshTokenReused as reused:
        # Theft detection: the revocation must outlive this request's rollback.
        await session.rollback()
        async with session_scope(join=False) as own:
            await service.revoke_session(
                own, session_id=reused.session_id, reason="refresh_token_reused"
            )
        raise
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
