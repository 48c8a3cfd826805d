"""The hr module's part of the profile pipeline: read the worker from HCM, publish what it says.

On ``user.syncProfile`` the worker is looked up by person number, else by Oracle username (a
person number HCM no longer knows falls back to the username too), as the integration account.
Its names, work email, primary assignment and line managers are published as
``hr.profile.synced``; the user module stores them. A worker HCM does not know is
``worker_not_found``: a user's own request answers 404; a scheduled or admin sync's delivery
becomes a dead letter at once (recorded, with its reason, and counted by the run; not retried).
Oracle being down or throttling is raised as the client's typed error: 503 with Retry-After to
the user, a retry (after Oracle's ``Retry-After`` when it gave one) for a scheduled sync.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.hr import LineManager, WorkerProfile, WorkerProfileSynced
from app.contracts.user import UserProfileSyncRequested
from app.core.errors import AppError
from app.events import DoNotRetry, Retry, RetryAfter, publish
from app.integrations.errors import IntegrationError, NotFoundError
from app.integrations.oracle_fusion import OracleFusionClient, Worker
from app.integrations.runtime import get_integrations
from app.modules.hr.errors import WorkerNotFound

logger = logging.getLogger(__name__)

TRANSIENT_KINDS = frozenset({"unavailable", "rate_limited"})


async def sync_worker_profile(session: AsyncSession, *, event: UserProfileSyncRequested) -> None:
    """Read the user's worker from HCM and publish ``hr.profile.synced``.

    Raises:
        WorkerNotFound: HCM knows neither the person number nor the username.
        IntegrationError: Oracle failed (down, throttling, refusing our credentials).
        IntegrationNotConfigured: the organisation has no Oracle Fusion connection.
    """
    oracle = await get_integrations().oracle_fusion(session, organization_id=event.organization_id)
    worker = await read_worker(
        oracle, person_number=event.person_number, username=event.oracle_username
    )
    await publish(
        WorkerProfileSynced(
            organization_id=event.organization_id,
            user_id=event.user_id,
            first_time=event.first_time,
            profile=profile_of(worker),
            line_managers=line_managers_of(worker),
        )
    )


async def sync_scheduled_profile(session: AsyncSession, *, event: UserProfileSyncRequested) -> None:
    """Run one user's scheduled or admin sync, telling the relay whether a retry can help.

    Raises:
        DoNotRetry: the answer is about the user or the organisation's settings (4xx:
            ``worker_not_found``, ``integration_not_configured``...), not a passing failure.
        RetryAfter: Oracle is down or throttling and said when to come back.
        Retry: Oracle is down or throttling and did not say when.
        IntegrationError: any other Oracle failure, retried by the listener's policy.
    """
    try:
        await sync_worker_profile(session, event=event)
    except AppError as exc:
        if exc.status >= 500:
            raise
        logger.warning(
            "profile sync of user %s (%s): %s", event.user_id, event.requested_by, exc.code
        )
        raise DoNotRetry(f"{exc.code}: {exc.detail}") from exc
    except IntegrationError as exc:
        if exc.kind in TRANSIENT_KINDS and exc.retry_after is not None:
            raise RetryAfter(exc.retry_after, f"upstream_{exc.kind}") from exc
        if exc.kind in TRANSIENT_KINDS:
            raise Retry(f"upstream_{exc.kind}: {exc}") from exc
        raise


async def read_worker(
    oracle: OracleFusionClient, *, person_number: str | None, username: str | None
) -> Worker:
    """Return the worker with this person number, else the one with this username.

    Raises:
        WorkerNotFound: HCM knows neither (or the user has neither).
    """
    if person_number:
        try:
            return await oracle.get_worker(person_number=person_number)
        except NotFoundError:
            if not username:
                raise WorkerNotFound() from None
    if username:
        try:
            return await oracle.get_worker_by_username(username)
        except NotFoundError:
            raise WorkerNotFound() from None
    raise WorkerNotFound("You have neither a person number nor an Oracle username to look up.")


def profile_of(worker: Worker) -> WorkerProfile:
    """The profile fields HCM owns, from a worker and its primary assignment."""
    assignment = worker.assignment
    return WorkerProfile(
        person_number=worker.person_number or None,
        first_name=worker.first_name,
        last_name=worker.last_name,
        display_name=worker.display_name,
        work_email=worker.work_email,
        job=(assignment.assignment_name or assignment.job_code) if assignment else None,
        department=assignment.department_name if assignment else None,
        business_unit=assignment.business_unit_name if assignment else None,
    )


def line_managers_of(worker: Worker) -> tuple[LineManager, ...]:
    """The worker's line managers HCM could resolve to a person, in HCM's order."""
    return tuple(
        LineManager(
            person_number=manager.person_number,
            display_name=manager.display_name,
            email=manager.work_email,
        )
        for manager in worker.line_managers
        if manager.person_number or manager.display_name
    )
