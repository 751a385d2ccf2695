"""The answer to CloudFormation: one PUT of a small JSON document to the pre-signed ResponseURL.

Replaces crhelper's sender, which retries forever when the URL is unreachable: this one speaks HTTPS only,
retries a bounded number of times within a time budget, and keeps the body under CloudFormation's
4096-byte limit by shortening the Reason.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import re
import ssl
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from provisioner.logs import log_event

logger = logging.getLogger(__name__)

# Tests point this at a private CA file; None means the system trust store (production).
CA_FILE: str | None = None

MAX_BODY_BYTES = 4096
MAX_REASON_CHARS = 2000
_TRUNCATED = " [...] (truncated; see the provisioner's log)"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_RETRY_STATUS = frozenset({408, 429})


def build_body(
    *,
    status: str,
    reason: str,
    physical_id: str,
    stack_id: str,
    request_id: str,
    logical_id: str,
    data: Mapping[str, str] | None = None,
) -> bytes:
    """The response document, at most MAX_BODY_BYTES - 1 bytes; only the Reason is ever shortened."""
    reason = _CONTROL.sub("?", reason or "")
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - len(_TRUNCATED)] + _TRUNCATED
    document = {
        "Status": status,
        "Reason": reason,
        "PhysicalResourceId": physical_id,
        "StackId": stack_id,
        "RequestId": request_id,
        "LogicalResourceId": logical_id,
        "NoEcho": False,
        "Data": dict(data or {}),
    }
    encoded = json.dumps(document, separators=(",", ":")).encode()
    while len(encoded) >= MAX_BODY_BYTES and document["Reason"]:
        excess = len(encoded) - MAX_BODY_BYTES + 1
        current = str(document["Reason"])
        keep = max(len(current) - excess - len(_TRUNCATED) - 8, 0)
        document["Reason"] = current[:keep] + _TRUNCATED if keep else current[: max(len(current) - excess, 0)]
        encoded = json.dumps(document, separators=(",", ":")).encode()
    if len(encoded) >= MAX_BODY_BYTES:
        document["Data"] = {}
        encoded = json.dumps(document, separators=(",", ":")).encode()
    return encoded


def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=CA_FILE) if CA_FILE else ssl.create_default_context()


def send_response(
    url: str,
    body: bytes,
    *,
    tries: int = 5,
    timeout: float = 8.0,
    budget: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """PUT `body` to the pre-signed URL; True once CloudFormation's store answered 200.

    Retries connection errors, timeouts, 408, 429 and 5xx with capped exponential backoff, never past
    `budget` seconds. Refuses anything but https: the URL carries a signature, never send it in clear.
    """
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        log_event(logger, "response_url_refused", logging.ERROR, scheme=parts.scheme)
        return False
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    headers = {"content-type": "", "content-length": str(len(body))}
    started = clock()
    for attempt in range(1, tries + 1):
        remaining = budget - (clock() - started)
        if remaining <= 0:
            break
        status: int | None = None
        try:
            connection = http.client.HTTPSConnection(
                parts.hostname, parts.port, context=_ssl_context(), timeout=min(timeout, remaining)
            )
            try:
                connection.request("PUT", path, body=body, headers=headers)
                answer = connection.getresponse()
                answer.read()
                status = answer.status
            finally:
                connection.close()
        except (OSError, http.client.HTTPException) as exc:
            log_event(
                logger, "response_put_error", logging.WARNING, attempt=attempt, error=type(exc).__name__
            )
        else:
            if 200 <= status < 300:
                log_event(logger, "response_sent", attempt=attempt, status=status, bytes=len(body))
                return True
            log_event(logger, "response_put_status", logging.WARNING, attempt=attempt, status=status)
            if 400 <= status < 500 and status not in _RETRY_STATUS:
                return False  # an expired or wrong URL does not heal by retrying
        if attempt < tries:
            delay = min(0.5 * 2 ** (attempt - 1), 8.0) * (0.5 + random.random() / 2)  # noqa: S311 - jitter
            if clock() - started + delay >= budget:
                break
            sleep(delay)
    log_event(logger, "response_not_delivered", logging.ERROR, bytes=len(body))
    return False
