"""Destinations: how records become request bodies for one kind of intake, and how its answer is read.

A destination is an encoder plus a response reader; the transport, retries, deadline and counters are
shared (forwarder.sender, forwarder.pipeline). Each one is a module with a class that has:

- ``framing``: the bytes before, between and after the encoded records of one body, and ``content_type``;
- ``encode(record) -> bytes``: one record as it appears in the body (records are then cut into batches
  within the destination's limits, and a retry body for some of them is cut from the batch's buffer);
- ``read_response(response, sent) -> Verdict``: every HTTP answer (2xx included, with its bounded body)
  read once, per item and by position where the intake answers per item.

The verdict says what the shared retry policy (``sender.plan_retry``) acts on: delivered, retry these
items (after N s), rejected this many items with reasons (by position where the intake says which), and
how many were duplicates already there. Shapes later destinations fit into:

- OTLP's partial success (200 with ``rejectedLogRecords``: a count and one message, no positions) is
  ``rejected`` with one position-less ``Rejection``: counted, never retried. Its retryable statuses
  (429, 502, 503, 504 only) are the destination's own ``status_verdict(..., retryable=...)``.
- Splunk HEC with indexer acknowledgement answers 200 with an ``ackId``: a verdict may then name a
  confirmation request (POST ``/services/collector/ack``) that the sender repeats within ``seconds_left``
  and the destination reads like any answer; an ack still pending when the time is up becomes a
  ``retry`` of the whole batch (transient), never "delivered".

Destinations are registered in one lazy table, like the parsers, and chosen once from ``OUTPUT_FORMAT``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from forwarder.config import Config
    from forwarder.sender import Batch, HttpResponse

__all__ = [
    "DEFAULT_OUTPUT_FORMAT",
    "OUTPUT_FORMATS",
    "Destination",
    "Framing",
    "Rejection",
    "Verdict",
    "destination_for",
    "is_retryable_status",
    "short_reason",
    "status_phrase",
    "status_verdict",
]

# format -> (module, class); imported on first use, so a format's code loads only when it is chosen.
_DESTINATIONS: dict[str, tuple[str, str]] = {
    "json": ("forwarder.destinations.envelope", "JsonEnvelope"),
    "ndjson": ("forwarder.destinations.ndjson", "Ndjson"),
    "elasticsearch": ("forwarder.destinations.elasticsearch", "ElasticsearchBulk"),
    "otlp": ("forwarder.destinations.otlp", "OtlpLogs"),
}

_REASON_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")

OUTPUT_FORMATS: tuple[str, ...] = tuple(_DESTINATIONS)
DEFAULT_OUTPUT_FORMAT = "json"


@dataclass(frozen=True, slots=True)
class Framing:
    """The bytes around and between the encoded records of one request body."""

    prefix: bytes = b""
    separator: bytes = b""
    suffix: bytes = b""


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why the intake refused an item for good (a mapping conflict, say), and its position when known."""

    position: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one response means for the items of the body it answers.

    Items neither retried nor rejected are delivered (``duplicates`` of them were already there).
    ``rejections`` give the reasons of some or all of the ``rejected`` items. ``refused`` is a permanent
    answer to the whole request (a 4xx that retrying will not fix).
    """

    retry: tuple[int, ...] = ()
    failure: str = ""
    after: float | None = None
    rejected: int = 0
    rejections: tuple[Rejection, ...] = ()
    duplicates: int = 0
    refused: bool = False

    @property
    def delivered(self) -> bool:
        return not self.retry and not self.refused


DELIVERED = Verdict()


class Destination(Protocol):
    """One kind of intake: its body layout, its encoder and its response reader."""

    @property
    def name(self) -> str: ...

    @property
    def content_type(self) -> str: ...

    @property
    def framing(self) -> Framing: ...

    @property
    def accepts(self) -> str:
        """What the intake must accept, for error hints: 'gzip JSON {"logs": [...]}'."""
        ...

    def encode(self, record: dict[str, Any]) -> bytes: ...

    def read_response(self, response: HttpResponse, sent: Batch) -> Verdict: ...


def destination_for(config: Config) -> Destination:
    """The destination ``config.output_format`` names; unknown -> ValueError naming the valid ones."""
    try:
        module_name, class_name = _DESTINATIONS[config.output_format]
    except KeyError:
        raise ValueError(
            f"unknown output format {config.output_format!r}; valid formats: {', '.join(OUTPUT_FORMATS)}"
        ) from None
    factory = getattr(importlib.import_module(module_name), class_name)
    destination: Destination = factory(config)
    return destination


def is_retryable_status(status: int) -> bool:
    """408, 429 and 5xx are worth another try; everything else is not."""
    return status in (408, 429) or 500 <= status <= 599


def status_verdict(
    response: HttpResponse, sent: Batch, *, retryable: Callable[[int], bool] = is_retryable_status
) -> Verdict | None:
    """The verdict of a non-2xx answer, which concerns the whole request; None for a 2xx."""
    status = response.status
    if 200 <= status <= 299:
        return None
    if retryable(status):
        failure = f"HTTP {status} {status_phrase(status)}".rstrip()
        return Verdict(retry=tuple(range(sent.records)), failure=failure)
    return Verdict(refused=True)


def short_reason(text: str) -> str:
    """Text an intake sent as a reason, on one line and at most 200 characters."""
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 3] + "..."


def status_phrase(status: int) -> str:
    """'Bad Request' for 400; '' for a status HTTP does not name."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
