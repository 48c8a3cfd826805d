"""The demo seed hook: point the demo organisation's integrations at the sandbox.

Oracle Fusion uses per-user bearer JWTs signed with the demo key (the integration account,
``integration``, for calls made as no one in particular); Yardi uses the sandbox's interface
credentials. An organisation that already has a connection keeps it, except that a connection
still pointing at a sandbox (``.../sandbox/oracle`` or ``.../sandbox/yardi``) follows the sandbox
when ``make run`` moves to another port or ``SANDBOX_PUBLIC_URL`` changes.
"""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.settings import get_settings
from app.core.tenancy import Organization
from app.integrations.connections.repository import get
from app.integrations.connections.schemas import IntegrationKind, OracleFusionChanges, YardiChanges
from app.integrations.connections.service import set_connection
from app.sandbox.keys import demo_private_key_pem

SANDBOX_INTEGRATION_USER = "integration"
SANDBOX_PATHS = {
    IntegrationKind.ORACLE_FUSION: "/sandbox/oracle",
    IntegrationKind.YARDI: "/sandbox/yardi",
}


async def seed_demo_connections(session: AsyncSession, organization: Organization) -> None:
    """Connect the demo organisation to the sandbox (idempotent; keeps what an admin set)."""
    settings = get_settings()
    base = settings.sandbox.resolved_public_url(settings.app)
    password = settings.sandbox.password
    changes: dict[IntegrationKind, OracleFusionChanges | YardiChanges] = {
        IntegrationKind.ORACLE_FUSION: OracleFusionChanges(
            base_url=f"{base}/oracle",
            auth_mode="jwt",
            username=SANDBOX_INTEGRATION_USER,
            password=password,
            jwt_private_key=SecretStr(demo_private_key_pem(settings.sandbox.jwt_key_file)),
            jwt_issuer="workflow-hub-demo",
            framework_version=4,
        ),
        IntegrationKind.YARDI: YardiChanges(
            base_url=f"{base}/yardi",
            username=SANDBOX_INTEGRATION_USER,
            password=password,
            server_name="sandbox",
            database="sandbox_live",
            platform="SQL Server",
            interface_entity="Workflow Hub",
            interface_license=SecretStr("SANDBOX-INTERFACE-LICENSE"),
        ),
    }
    for kind, change in changes.items():
        existing = await get(session, organization_id=organization.id, kind=kind.value)
        if existing is None:
            await set_connection(
                session, organization_id=organization.id, kind=kind, changes=change
            )
            continue
        wanted = change.base_url
        suffix = SANDBOX_PATHS[kind]
        if existing.base_url != wanted and existing.base_url.rstrip("/").endswith(suffix):
            moved = type(change)(base_url=wanted)
            await set_connection(session, organization_id=organization.id, kind=kind, changes=moved)
