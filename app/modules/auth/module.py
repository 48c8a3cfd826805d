"""The auth module: login, rotating refresh tokens, logout, and the per-request session check.

Routes (under /api/v1): POST /auth/login, /auth/refresh, /auth/logout, /auth/logout-mobile.
Publishes ``auth.login`` and ``auth.logout``. Listens inline to ``user.created``,
``user.updated``, ``user.deleted`` and ``user.credentials.changed`` to keep its credentials read
model; a deleted or deactivated user's sessions end at once. It provides the session validator
that ``CurrentUser`` runs on every authenticated request.
"""

from app.contracts.auth import UserLoggedIn, UserLoggedOut
from app.core.modules import ModuleSpec
from app.modules.auth import listeners, service
from app.modules.auth.router import router

module = ModuleSpec(
    name="auth",
    router=router,
    publishes=(UserLoggedIn, UserLoggedOut),
    listeners=(
        listeners.when_user_created_store_account,
        listeners.when_user_updated_sync_account,
        listeners.when_user_deleted_revoke_access,
        listeners.when_user_credentials_changed_store_hash,
    ),
    session_validator=service.validate_session,
)
