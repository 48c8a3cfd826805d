"""Yardi's error answers: ``<Messages>`` inside an HTTP 200, and SOAP faults.

Yardi reports most errors as HTTP 200 with ``<Messages><Message messageType="Error">text``
inside the method's ``*Result``; the texts below are the ones practitioners have seen. Malformed
requests get a SOAP fault.
"""

from __future__ import annotations

from app.integrations.errors import (
    ActionNotAllowedError,
    AlreadyDecidedError,
    AuthError,
    BadRequestError,
    IntegrationError,
    NotFoundError,
    UnavailableError,
)

INTEGRATION = "yardi"


class SoapFaultError(BadRequestError):
    """A ``soap:Client`` fault: the request itself was refused."""

    def __init__(self, detail: str, *, fault_code: str, status: int | None = None) -> None:
        super().__init__(detail, integration=INTEGRATION, status=status)
        self.fault_code = fault_code


class SoapServerFaultError(UnavailableError):
    """A ``soap:Server`` fault: Yardi failed; retry later."""

    def __init__(self, detail: str, *, fault_code: str, status: int | None = None) -> None:
        super().__init__(detail, integration=INTEGRATION, status=status)
        self.fault_code = fault_code


_BY_TEXT: tuple[tuple[str, type[IntegrationError]], ...] = (
    ("login failed", AuthError),
    ("already", AlreadyDecidedError),
    ("not allowed", ActionNotAllowedError),
    ("not permitted", ActionNotAllowedError),
    ("not found", NotFoundError),
    ("does not exist", NotFoundError),
    ("no tenants exist", NotFoundError),
)


def error_from_message(text: str) -> IntegrationError:
    """Return the typed error for a Yardi ``<Message>`` of type Error."""
    folded = text.casefold()
    for needle, cls in _BY_TEXT:
        if needle in folded:
            return cls(text, integration=INTEGRATION, status=200)
    return BadRequestError(text, integration=INTEGRATION, status=200)


def fault(detail: str, *, fault_code: str, status: int | None) -> IntegrationError:
    """Return the typed error for a SOAP fault."""
    if fault_code.rsplit(":", 1)[-1].casefold() in ("server", "receiver"):
        return SoapServerFaultError(detail, fault_code=fault_code, status=status)
    return SoapFaultError(detail, fault_code=fault_code, status=status)
