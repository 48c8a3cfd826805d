"""Oracle Fusion: HCM workers, the BPM worklist and purchase requisitions."""

from app.integrations.oracle_fusion.auth import BearerJwtAuth, JwtSigner, load_rsa_private_key
from app.integrations.oracle_fusion.client import OracleFusionClient
from app.integrations.oracle_fusion.models import (
    Assignment,
    LineManager,
    ManagerRef,
    Requisition,
    RequisitionLine,
    TaskAction,
    TaskDetail,
    TaskSummary,
    Worker,
)

__all__ = [
    "Assignment",
    "BearerJwtAuth",
    "JwtSigner",
    "LineManager",
    "ManagerRef",
    "OracleFusionClient",
    "Requisition",
    "RequisitionLine",
    "TaskAction",
    "TaskDetail",
    "TaskSummary",
    "Worker",
    "load_rsa_private_key",
]
