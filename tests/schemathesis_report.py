"""What both schemathesis runs (Chatwoot's swagger, the gateway's own OpenAPI) read the same way
from a recorded scenario: the response statuses and the server errors."""

from __future__ import annotations

from collections import Counter
from typing import Any


def count_responses(
    recorder: dict[str, Any], statuses: Counter[int], server_errors: list[str]
) -> None:
    """Add each answered interaction's status; list every 5xx as ``STATUS METHOD URI``."""
    for interaction in (recorder.get("interactions") or {}).values():
        response = interaction.get("response")
        if response is None:
            continue
        status = int(response["status_code"])
        statuses[status] += 1
        if status >= 500:
            request = interaction["request"]
            server_errors.append(f"{status} {request['method']} {request['uri']}")
