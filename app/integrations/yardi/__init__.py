"""Yardi: leasing approvals over SOAP (our contract, in Yardi's style)."""

from app.integrations.yardi.client import INTERFACE, YardiClient
from app.integrations.yardi.errors import SoapFaultError, SoapServerFaultError
from app.integrations.yardi.models import (
    ApprovalActionResult,
    Attachment,
    LeasingApproval,
    LeasingApprovalDetail,
    YardiCredentials,
)

__all__ = [
    "INTERFACE",
    "ApprovalActionResult",
    "Attachment",
    "LeasingApproval",
    "LeasingApprovalDetail",
    "SoapFaultError",
    "SoapServerFaultError",
    "YardiClient",
    "YardiCredentials",
]
