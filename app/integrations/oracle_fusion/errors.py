"""Oracle Fusion's error answers mapped onto the integration error kinds.

Fusion answers an error either with structured JSON (``o:errorDetails``, when the client accepts
``application/vnd.oracle.adf.error+json``) or with a plain-text body; BPM answers plain text
("Task not found."). The detail is the first ``o:errorDetails[].detail``, else the JSON's
``detail`` or ``title``, else the text itself.
"""

from __future__ import annotations

import json
from http import HTTPStatus

import httpx

from app.integrations import errors
from app.integrations.errors import ConflictError, IntegrationError

INTEGRATION = "oracle_fusion"
MAX_DETAIL = 500


def error_detail(response: httpx.Response) -> str:
    """Return the human message of an error answer, in whichever shape it came."""
    body = response.text.strip()
    if body.startswith("{"):
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            details = data.get("o:errorDetails")
            if isinstance(details, list):
                for item in details:
                    if isinstance(item, dict) and item.get("detail"):
                        return str(item["detail"])[:MAX_DETAIL]
            for field in ("detail", "title", "message"):
                if isinstance(data.get(field), str) and data[field]:
                    return str(data[field])[:MAX_DETAIL]
    if body:
        return body[:MAX_DETAIL]
    try:
        return HTTPStatus(response.status_code).phrase
    except ValueError:
        return f"HTTP {response.status_code}"


def error_from_response(
    response: httpx.Response, *, conflict: type[ConflictError] = ConflictError
) -> IntegrationError:
    """Return the typed error for a non-2xx answer."""
    return errors.error_from_response(
        response, error_detail(response), integration=INTEGRATION, conflict=conflict
    )
