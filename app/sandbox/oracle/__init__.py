"""The Oracle Fusion sandbox: HCM workers, the BPM worklist and purchase requisitions."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp

from app.sandbox.faults import FaultInjection
from app.sandbox.oracle import bpm, hcm, procurement
from app.sandbox.oracle.common import OracleError, error_response, fault_response
from app.sandbox.oracle.worklist import Worklist
from app.sandbox.state import SandboxState


def build_oracle(state: SandboxState) -> ASGIApp:
    """Return the ASGI app serving Oracle Fusion's paths (mount it under ``/oracle``)."""
    app = Starlette(
        routes=[
            Route(f"{hcm.HCM}/workers", hcm.workers),
            Route(f"{hcm.HCM}/workers/{{key}}", hcm.worker),
            Route(f"{hcm.HCM}/publicWorkers", hcm.public_workers),
            Route(bpm.TASKS, bpm.list_tasks),
            Route(f"{bpm.TASKS}/{{number}}", bpm.get_task),
            Route(f"{bpm.TASKS}/{{number}}", bpm.act_on_task, methods=["PUT"]),
            Route(f"{procurement.FSCM}/purchaseRequisitions", procurement.purchase_requisitions),
        ],
        exception_handlers={OracleError: error_response},
    )
    app.state.sandbox = state
    app.state.worklist = Worklist(state)
    return FaultInjection(app, system="oracle", state=state, render=fault_response)
