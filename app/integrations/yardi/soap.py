"""SOAP 1.1 envelopes in Yardi's style, built by hand and read with a hardened parser.

Requests are one line (a Yardi client notes that "line-feeds kill the server"). Answers are parsed
with defusedxml, which refuses DTDs, entity declarations and external references, so a
billion-laughs or XXE payload never expands. Elements are matched by local name: Yardi mixes the
``tempuri.org`` namespace, MITS and no namespace at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from app.integrations.errors import IntegrationError, ProtocolError
from app.integrations.yardi.errors import INTEGRATION, error_from_message, fault
from app.integrations.yardi.models import YardiCredentials

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
ERROR_TYPES = frozenset({"error", "fatal"})


def namespace(interface: str) -> str:
    """Return the ``tempuri.org`` namespace of a Yardi interface."""
    return f"http://tempuri.org/YSI.Interfaces.WebServices/{interface}"


def credential_fields(credentials: YardiCredentials) -> list[tuple[str, str]]:
    """Return the credential elements, in Yardi's order."""
    fields = [
        ("UserName", credentials.username),
        ("Password", credentials.password),
        ("ServerName", credentials.server_name),
        ("Database", credentials.database),
        ("Platform", credentials.platform),
    ]
    if credentials.property_id:
        fields.append(("YardiPropertyId", credentials.property_id))
    fields += [
        ("InterfaceEntity", credentials.interface_entity),
        ("InterfaceLicense", credentials.interface_license),
    ]
    return fields


def envelope(method: str, ns: str, fields: Iterable[tuple[str, str]]) -> bytes:
    """Return a one-line SOAP 1.1 request calling ``method`` with ``fields`` in order."""
    body = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<soap:Envelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        f'xmlns:soap="{SOAP_NS}">'
        f'<soap:Body><{method} xmlns="{ns}">{body}</{method}></soap:Body></soap:Envelope>'
    ).encode()


def local(tag: str) -> str:
    """Return an element tag without its namespace."""
    return tag.rsplit("}", 1)[-1]


def child(element: Element, name: str) -> Element | None:
    """Return the first direct child with this local name."""
    for item in element:
        if local(item.tag) == name:
            return item
    return None


def children(element: Element, name: str) -> Iterator[Element]:
    """Yield the direct children with this local name."""
    return (item for item in element if local(item.tag) == name)


def descendant(element: Element, name: str) -> Element | None:
    """Return the first descendant with this local name."""
    for item in element.iter():
        if item is not element and local(item.tag) == name:
            return item
    return None


def text_of(element: Element | None, name: str) -> str | None:
    """Return the stripped text of a direct child, or ``None``."""
    if element is None:
        return None
    found = child(element, name)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def parse(content: bytes) -> Element:
    """Parse an answer, refusing DTDs, entities and external references."""
    try:
        root: Element = fromstring(
            content, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        raise ProtocolError(
            f"refused unsafe XML ({type(exc).__name__})", integration=INTEGRATION
        ) from exc
    except ParseError as exc:
        raise ProtocolError(f"the answer is not XML ({exc})", integration=INTEGRATION) from exc
    return root


MAX_FAULT_BYTES = 64_000
"""The largest 5xx answer read to tell a client fault from a server fault."""
_CLIENT_FAULT = re.compile(rb"<(?:[\w.-]+:)?faultcode>\s*(?:[\w.-]+:)?Client\b")


async def is_server_failure(response: httpx.Response) -> bool:
    """Whether an answer means Yardi is failing (for the breaker).

    SOAP faults arrive as HTTP 500. A ``soap:Client`` fault says our request was wrong (a
    SOAPAction or a WSDL mismatch), so it must not open the breaker; a ``soap:Server`` fault,
    or any other 5xx, does.
    """
    if response.status_code < 500:
        return False
    length = response.headers.get("Content-Length", "")
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding != "identity" or not (length.isdigit() and int(length) <= MAX_FAULT_BYTES):
        # Not a fault we can read cheaply (a compressed body could inflate far beyond its
        # length, before the client's size cap applies): count it.
        return True
    await response.aread()  # small; the client reads it again from memory
    return _CLIENT_FAULT.search(response.content) is None


def fault_of(root: Element, status: int | None) -> IntegrationError | None:
    """Return the error a SOAP fault in the answer describes, if there is one."""
    body = child(root, "Body") if local(root.tag) == "Envelope" else None
    found = child(body, "Fault") if body is not None else None
    if found is None:
        return None
    code = text_of(found, "faultcode") or "soap:Server"
    detail = text_of(found, "faultstring") or "SOAP fault"
    return fault(detail, fault_code=code, status=status)


def result_of(root: Element, method: str) -> Element:
    """Return ``Body/<method>Response/<method>Result``, raising the errors it carries.

    Raises:
        IntegrationError: a ``<Messages>`` error (typed by its text) or a missing result.
    """
    if local(root.tag) != "Envelope":
        raise ProtocolError("the answer is not a SOAP envelope", integration=INTEGRATION)
    body = child(root, "Body")
    response = child(body, f"{method}Response") if body is not None else None
    result = child(response, f"{method}Result") if response is not None else None
    if result is None:
        raise ProtocolError(f"no {method}Result in the answer", integration=INTEGRATION)
    messages = descendant(result, "Messages")
    if messages is not None:
        for message in children(messages, "Message"):
            kind = _attribute(message.attrib, "messageType", "type") or "Error"
            if kind.casefold() in ERROR_TYPES and message.text and message.text.strip():
                raise error_from_message(message.text.strip())
    return result


def _attribute(attributes: Mapping[str, str], *names: str) -> str | None:
    by_local = {local(k).casefold(): v for k, v in attributes.items()}
    for name in names:
        if name.casefold() in by_local:
            return by_local[name.casefold()]
    return None
