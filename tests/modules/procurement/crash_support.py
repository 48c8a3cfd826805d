"""Loaded into a worker subprocess through ``EVENTS_EXTRA_LISTENERS``: the procurement audit
listener writes its record, tells the test (a marker file) and hangs before the delivery
commits, so that the test can kill the worker exactly there."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.contracts.procurement import ProcurementApprovalAudited
from app.modules.procurement.service import inbox

_record_approval = inbox.record_approval


async def _record_then_hang(event: ProcurementApprovalAudited) -> bool:
    written = await _record_approval(event)
    Path(os.environ["AUDIT_CRASH_MARKER"]).write_text(str(event.approval_id))
    await asyncio.sleep(3600)
    return written


setattr(inbox, "record_approval", _record_then_hang)  # noqa: B010

listeners: tuple[Callable[..., Any], ...] = ()
