"""The process's integrations: one HTTP client per integration, the breakers, the push gateway.

``create_app()`` opens them in the lifespan with :func:`open_integrations` and installs them with
:func:`set_integrations`; listeners and jobs reach them with :func:`get_integrations` and ask for
a client per organisation (and, for Oracle, per acting user)::

    oracle = await get_integrations().oracle_fusion(session, organization_id=org, acting_user=u)
    tasks = await oracle.list_tasks(category="Purchasing")

This is the one place in ``app/integrations`` that reads ``app.core``: the clients themselves
only know httpx.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from firebase_admin import credentials as firebase_credentials
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.settings import Settings
from app.integrations.connections.schemas import OracleFusionConnection, YardiConnection
from app.integrations.connections.service import (
    CONNECTIONS,
    InvalidIntegrationSettings,
    check_allowed_host,
)
from app.integrations.fcm import FirebasePushGateway, LogPushGateway, PushGateway
from app.integrations.fcm.credentials import StaticTokenCredential
from app.integrations.oracle_fusion import JwtSigner, OracleFusionClient
from app.integrations.transport import (
    BreakerRegistry,
    FailureCheck,
    Sleep,
    build_client,
    policy_from_settings,
    server_error,
)
from app.integrations.transport.breaker import Clock
from app.integrations.yardi import YardiClient, YardiCredentials
from app.integrations.yardi.soap import is_server_failure as yardi_server_failure

logger = logging.getLogger(__name__)

USER_AGENT = "workflow-hub/0.1"
SANDBOX_PROJECT = "sandbox-project"
FAILURE_CHECKS: dict[str, FailureCheck] = {"yardi": yardi_server_failure}
"""Integrations whose 5xx answers are not all the system failing (Yardi's client faults)."""


class Integrations:
    """Clients per organisation, over the process's shared HTTP clients and breakers."""

    def __init__(
        self,
        settings: Settings,
        *,
        oracle_http: httpx.AsyncClient,
        yardi_http: httpx.AsyncClient,
        push: PushGateway,
        breakers: BreakerRegistry,
    ) -> None:
        self.settings = settings
        self.oracle_http = oracle_http
        self.yardi_http = yardi_http
        self.push = push
        self.breakers = breakers
        self._signers: dict[uuid.UUID, tuple[str, JwtSigner]] = {}

    async def oracle_fusion(
        self,
        session: AsyncSession | None,
        *,
        organization_id: uuid.UUID,
        acting_user: str | None = None,
    ) -> OracleFusionClient:
        """Return an Oracle Fusion client for the organisation, acting as ``acting_user``.

        In JWT mode an acting user gets a bearer token naming them, so BPM actions run as
        them; without one (or in basic mode) calls run as the integration account. The
        connection is read with ``session``, or, when it is None, with a read session of its
        own, opened only when the connection must be read (see ``ConnectionCache``).
        """
        connection = await CONNECTIONS.get(
            session, organization_id=organization_id, kind=OracleFusionConnection
        )
        check_allowed_host(connection.base_url)  # stored before HTTP_ALLOWED_HOSTS was set
        auth: httpx.Auth
        if connection.auth_mode == "jwt" and (acting_user or not connection.is_set("password")):
            username = acting_user or connection.username
            if not username:
                raise InvalidIntegrationSettings("An Oracle JWT needs a user to name.")
            auth = self._signer(organization_id, connection).auth_for(username)
        else:
            if not (connection.username and connection.password):
                raise InvalidIntegrationSettings("Oracle basic auth needs a username and password.")
            auth = httpx.BasicAuth(connection.username, connection.password.get_secret_value())
        oracle = self.settings.oracle_fusion
        return OracleFusionClient(
            self.oracle_http,
            base_url=connection.base_url,
            auth=auth,
            framework_version=connection.framework_version,
            tenant=str(organization_id),
            page_size=oracle.page_size,
            max_pages=oracle.max_pages,
        )

    async def yardi(
        self, session: AsyncSession | None, *, organization_id: uuid.UUID
    ) -> YardiClient:
        """Return a Yardi client for the organisation (``session`` None: a read session of its
        own, opened only when the connection must be read)."""
        connection = await CONNECTIONS.get(
            session, organization_id=organization_id, kind=YardiConnection
        )
        check_allowed_host(connection.base_url)
        return YardiClient(
            self.yardi_http,
            base_url=connection.base_url,
            credentials=YardiCredentials(
                username=connection.username,
                password=connection.password.get_secret_value(),
                server_name=connection.server_name,
                database=connection.database,
                platform=connection.platform,
                interface_entity=connection.interface_entity,
                interface_license=connection.interface_license.get_secret_value(),
                property_id=connection.property_id,
            ),
            tenant=str(organization_id),
            max_response_bytes=self.settings.yardi.max_response_bytes,
        )

    def _signer(self, organization_id: uuid.UUID, connection: OracleFusionConnection) -> JwtSigner:
        """Return the organisation's signer, rebuilt when its key or issuer changed."""
        assert connection.jwt_private_key is not None
        pem = connection.jwt_private_key.get_secret_value()
        material = f"{connection.jwt_issuer}\n{connection.jwt_key_id}\n{pem}".encode()
        fingerprint = hashlib.sha256(material).hexdigest()
        cached = self._signers.get(organization_id)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        signer = JwtSigner(
            pem,
            issuer=connection.jwt_issuer,
            key_id=connection.jwt_key_id,
            ttl_seconds=self.settings.oracle_fusion.jwt_ttl_seconds,
        )
        self._signers[organization_id] = (fingerprint, signer)
        return signer


def push_provider(settings: Settings) -> str:
    """Return the push provider ``FCM_PROVIDER`` resolves to."""
    provider = settings.fcm.provider
    if provider != "auto":
        return provider
    if settings.fcm.credentials_file is not None:
        return "fcm"
    return "sandbox" if settings.sandbox.enabled else "log"


def build_push_gateway(settings: Settings) -> PushGateway:
    """Return the push gateway of ``FCM_PROVIDER``."""
    fcm = settings.fcm
    provider = push_provider(settings)
    if provider == "log":
        return LogPushGateway()
    if provider == "fcm":
        if fcm.credentials_file is None:
            raise RuntimeError("FCM_PROVIDER=fcm needs FCM_CREDENTIALS_FILE")
        credential = firebase_credentials.Certificate(str(fcm.credentials_file))
        return FirebasePushGateway(
            credential=credential,
            project_id=fcm.project_id,
            timeout_seconds=fcm.timeout_seconds,
            dry_run=fcm.dry_run,
            max_concurrency=fcm.max_concurrency,
        )
    endpoint = fcm.sandbox_url or f"{settings.sandbox.resolved_public_url(settings.app)}/fcm"
    return FirebasePushGateway(
        credential=StaticTokenCredential(),
        project_id=fcm.project_id or SANDBOX_PROJECT,
        endpoint=endpoint,
        timeout_seconds=fcm.timeout_seconds,
        dry_run=fcm.dry_run,
        max_concurrency=fcm.max_concurrency,
        name="sandbox",
    )


@asynccontextmanager
async def open_integrations(
    settings: Settings,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    push: PushGateway | None = None,
    sleep: Sleep | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[Integrations]:
    """Open the integration HTTP clients and the push gateway; close them on exit.

    Args:
        settings: the process settings (``HTTP_*`` and each integration's overrides).
        transports: per integration, the transport under the resilience layer (tests).
        push: a push gateway to use instead of the one ``FCM_PROVIDER`` names (tests).
        sleep: how retries wait (tests).
        clock: the breakers' clock (tests).
    """
    transports = transports or {}
    http = settings.http
    breakers = BreakerRegistry(
        failure_threshold=http.breaker_failure_threshold,
        reset_seconds=http.breaker_reset_seconds,
        **({"clock": clock} if clock else {}),
    )
    headers = {"User-Agent": USER_AGENT}
    async with AsyncExitStack() as stack:
        stack.callback(breakers.close)
        clients: dict[str, httpx.AsyncClient] = {}
        for name, own in (("oracle_fusion", settings.oracle_fusion), ("yardi", settings.yardi)):
            policy = policy_from_settings(
                http,
                max_concurrency=own.max_concurrency,
                rate_limit_per_second=own.rate_limit_per_second,
                read_timeout_seconds=own.read_timeout_seconds,
            )
            client = build_client(
                name,
                policy,
                breakers,
                transport=transports.get(name),
                sleep=sleep,
                headers=headers,
                is_failure=FAILURE_CHECKS.get(name, server_error),
            )
            clients[name] = await stack.enter_async_context(client)
        gateway = push or build_push_gateway(settings)
        stack.push_async_callback(gateway.aclose)
        logger.info("integrations ready (push provider: %s)", gateway.name)
        yield Integrations(
            settings,
            oracle_http=clients["oracle_fusion"],
            yardi_http=clients["yardi"],
            push=gateway,
            breakers=breakers,
        )


_integrations: Integrations | None = None


def set_integrations(integrations: Integrations | None) -> None:
    """Install the process's integrations (``create_app()``'s lifespan does)."""
    global _integrations
    _integrations = integrations


def get_integrations() -> Integrations:
    """Return the process's integrations; raises before the lifespan opened them."""
    if _integrations is None:
        raise RuntimeError("the integrations are not open; the app's lifespan opens them")
    return _integrations


def clear_integrations(integrations: Integrations) -> None:
    """Uninstall ``integrations`` if they are the installed ones."""
    global _integrations
    if _integrations is integrations:
        _integrations = None
