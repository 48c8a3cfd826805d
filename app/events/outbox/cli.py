"""``python -m app events ...``: the event catalog; list, inspect, retry, discard and replay durable
deliveries.

``app/cli.py`` mounts :func:`events_cli`; its commands run in the process runtime, whose
application emitter knows the durable listeners that replay and ``max_attempts`` need.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import BaseModel

from app.core.commands import run_command
from app.core.db import get_database, session_scope, utcnow
from app.core.settings import get_settings
from app.events.app_emitter import AppEmitter
from app.events.catalog import catalog_table, replace_table
from app.events.outbox import service
from app.events.outbox.models import DeliveryStatus
from app.events.outbox.schemas import MAX_BIGINT, DeliveryDetail, DeliveryPage, ReplayResult
from app.events.runtime import get_emitter

T = TypeVar("T")

DeliveryIdArg = Annotated[
    int, typer.Argument(min=1, max=MAX_BIGINT, help="The delivery id.", show_default=False)
]

MIN_RETENTION_DAYS = 0.001
MAX_RETENTION_DAYS = 36_500.0

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(value: str, *, now: datetime) -> datetime:
    """Parse an ISO 8601 time (naive means UTC) or an age such as ``90s``, ``2h`` or ``7d``.

    Raises:
        ValueError: neither form.
    """
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = relative.groups()
        try:
            return now - timedelta(**{_UNITS[unit]: float(amount)})
        except OverflowError:
            raise ValueError(f"{value!r} reaches back further than a date can go") from None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{value!r} is neither an ISO 8601 time (2026-11-20T08:00:00Z) nor an age (2h, 7d)"
        ) from None
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value!r} has no UTC equivalent within the years 1 to 9999") from None


def events_cli() -> typer.Typer:
    """Return the ``events`` command group; its commands run inside the installed command
    runtime (``app/cli.py`` installs it), whose emitter names the durable listeners."""
    group = typer.Typer(help="Durable deliveries: list, inspect, retry, discard, replay, prune.")

    def run(work: Callable[[AppEmitter], Awaitable[T]]) -> T:
        async def main() -> T:
            try:
                return await work(get_emitter())
            except (service.UnknownListener, service.InvalidPattern) as exc:
                raise typer.BadParameter(exc.detail) from None

        return run_command(main)

    @group.command("catalog")
    def catalog(
        update: Annotated[
            Path | None,
            typer.Option(
                "--update",
                help="Rewrite the table between this Markdown file's catalog markers.",
                dir_okay=False,
                exists=True,
            ),
        ] = None,
    ) -> None:
        """Print the event catalog as a Markdown table (every event, its publisher, listeners)."""

        async def work(emitter: AppEmitter) -> str:
            return catalog_table(emitter.catalog())

        table = run(work)
        if update is None:
            typer.echo(table, nl=False)
            return
        update.write_text(replace_table(update.read_text(), table))
        typer.echo(f"{update} updated")

    @group.command("deliveries")
    def deliveries(
        status: Annotated[
            DeliveryStatus | None, typer.Option(help="Only this state (dead: dead letters).")
        ] = None,
        listener: Annotated[str | None, typer.Option(help="Only this listener id.")] = None,
        event: Annotated[str | None, typer.Option(help="Only this event name.")] = None,
        limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
        offset: Annotated[int, typer.Option(min=0, max=MAX_BIGINT)] = 0,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """List deliveries, newest first."""

        async def work(emitter: AppEmitter) -> DeliveryPage:
            async with session_scope() as session:
                return await service.list_deliveries(
                    session,
                    status=status,
                    listener_id=listener,
                    event_name=event,
                    limit=limit,
                    offset=offset,
                    emitter=emitter,
                )

        page = run(work)
        if as_json:
            _echo_json(page)
            return
        typer.echo(f"{'ID':>8}  {'STATUS':<9} {'TRIES':>5}  {'EVENT':<30} {'LISTENER':<40} ERROR")
        for item in page.items:
            tries = f"{item.attempts}/{item.max_attempts or '?'}"
            error = _short_error(item.last_error)
            typer.echo(
                f"{item.id:>8}  {item.status:<9} {tries:>5}  {item.event_name:<30} "
                f"{item.listener_id:<40} {error}"
            )
        shown = f"{page.offset + 1}-{page.offset + len(page.items)}" if page.items else "none"
        typer.echo(f"{shown} of {page.total}")

    @group.command("show")
    def show(
        delivery_id: DeliveryIdArg,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Inspect a delivery: its event, payload and full error history with tracebacks."""

        async def work(emitter: AppEmitter) -> DeliveryDetail:
            async with session_scope() as session:
                return await service.get_delivery(session, delivery_id, emitter=emitter)

        detail = run(work)
        if as_json:
            _echo_json(detail)
            return
        _echo_detail(detail)

    @group.command("retry")
    def retry(delivery_id: DeliveryIdArg) -> None:
        """Queue a dead, discarded or pending delivery now, with a fresh attempt budget."""

        async def work(emitter: AppEmitter) -> DeliveryDetail:
            async with session_scope() as session:
                return await service.retry_delivery(
                    session, delivery_id, now=utcnow(), emitter=emitter
                )

        detail = run(work)
        typer.echo(f"delivery {detail.id} queued ({detail.event_name} -> {detail.listener_id})")

    @group.command("discard")
    def discard(delivery_id: DeliveryIdArg) -> None:
        """Give up on a dead or pending delivery."""

        async def work(emitter: AppEmitter) -> DeliveryDetail:
            async with session_scope() as session:
                return await service.discard_delivery(
                    session, delivery_id, now=utcnow(), emitter=emitter
                )

        detail = run(work)
        typer.echo(f"delivery {detail.id} discarded")

    @group.command("replay")
    def replay(
        pattern: Annotated[str, typer.Option(help="Event name or pattern (user.*, **).")],
        since: Annotated[str, typer.Option(help="ISO 8601 time, or an age: 90m, 2h, 7d.")],
        listener: Annotated[str, typer.Option(help="The durable listener id to replay to.")],
        until: Annotated[str | None, typer.Option(help="Newest time (exclusive).")] = None,
    ) -> None:
        """Replay stored events since a time to one durable listener (backfill)."""
        now = utcnow()
        try:
            start = parse_time(since, now=now)
            end = parse_time(until, now=now) if until is not None else None
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None

        async def work(emitter: AppEmitter) -> ReplayResult:
            async with session_scope() as session:
                return await service.replay(
                    session,
                    emitter=emitter,
                    pattern=pattern,
                    listener_id=listener,
                    since=start,
                    until=end,
                    now=now,
                )

        result = run(work)
        names = ", ".join(result.event_names) or "no stored event matched"
        typer.echo(f"queued {result.queued} delivery(ies) to {result.listener_id} ({names})")

    @group.command("prune")
    def prune(
        retention_days: Annotated[
            float | None,
            typer.Option(
                min=MIN_RETENTION_DAYS,
                max=MAX_RETENTION_DAYS,
                help="Keep this many days (EVENTS_RETENTION_DAYS).",
            ),
        ] = None,
    ) -> None:
        """Delete finished history older than the retention now."""

        async def work(emitter: AppEmitter) -> int:
            days = retention_days
            if days is None:
                days = get_settings().events.retention_days
            return await service.prune_history(
                get_database(), retention=timedelta(days=days), now=utcnow()
            )

        typer.echo(f"pruned {run(work)} event(s)")

    return group


def _short_error(error: str | None, width: int = 80) -> str:
    """``pkg.mod.KeyError: 'x'`` -> ``KeyError: 'x'``, on one line, cut to ``width``."""
    if not error:
        return ""
    kind, sep, message = error.splitlines()[0].partition(": ")
    line = f"{kind.rsplit('.', 1)[-1]}{sep}{message}"
    return line if len(line) <= width else line[: width - 1] + "…"


def _echo_json(model: BaseModel) -> None:
    typer.echo(json.dumps(model.model_dump(mode="json"), indent=2))


def _echo_detail(detail: DeliveryDetail) -> None:
    rows = [
        ("delivery", str(detail.id)),
        ("status", detail.status),
        ("attempts", f"{detail.attempts}/{detail.max_attempts or '?'}"),
        ("listener", detail.listener_id),
        ("event", f"{detail.event_name} v{detail.version} ({detail.event_id})"),
        ("occurred at", detail.occurred_at.isoformat()),
        ("organization", str(detail.organization_id)),
        ("correlation id", detail.correlation_id),
        ("ordering key", detail.ordering_key or "-"),
        ("idempotency key", detail.idempotency_key),
        ("available at", detail.available_at.isoformat()),
        ("worker", detail.worker or "-"),
    ]
    for label, value in rows:
        typer.echo(f"{label + ':':<17}{value}")
    typer.echo("payload:")
    typer.echo(json.dumps(detail.payload, indent=2))
    typer.echo(f"errors ({len(detail.errors)}):")
    for entry in detail.errors:
        typer.echo(f"- attempt {entry.attempt} at {entry.at.isoformat()}: {entry.type}")
        typer.echo(f"  {entry.message}")
        if entry.traceback:
            typer.echo("  " + entry.traceback.rstrip().replace("\n", "\n  "))
