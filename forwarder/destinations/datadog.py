"""``datadog``: Datadog's logs intake, ``POST /api/v2/logs`` with a JSON array of log entries.

Each record becomes one entry: ``ddsource`` ``elb`` (``cloudwatch`` for CloudWatch Logs), ``service``
(``DD_SERVICE``), ``hostname`` the load balancer, ``ddtags`` (``DD_TAGS``), ``timestamp`` (epoch
milliseconds of the line's or the log event's time, which Datadog's date remapper reads) and the record's
fields as attributes. The intake documents its limits per request:
at most 1000 entries and 5 MB uncompressed, 1 MB per entry (it truncates a larger one itself), and the key
in the ``DD-API-KEY`` header. It answers 202 Accepted for the whole request; 400 (the payload's format),
401/403 (the key) and 413 (above 5 MB) are permanent, 408, 429 and 5xx are worth another try. There is no
document id: ``event_id`` travels as an attribute.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from forwarder import jsonutil
from forwarder.config import DD_SERVICE, DD_TAGS, HTTP_ENDPOINT, OUTPUT_FORMAT
from forwarder.destinations import DELIVERED, Framing, Verdict, record_time_ns, status_verdict

if TYPE_CHECKING:
    from forwarder.config import Config
    from forwarder.sender import Batch, HttpResponse

# Datadog's own AWS integration files ELB access logs under "elb", CloudWatch Logs under "cloudwatch".
SOURCE = "elb"
CLOUDWATCH_SOURCE = "cloudwatch"
# Tags: "key:value" (or a bare value), starting with a letter, at most 200 characters, no spaces or
# commas within one; the intake lowercases them.
_TAG = re.compile(r"[A-Za-z][A-Za-z0-9_\-:./]{0,199}")
_SERVICE = re.compile(r"[A-Za-z0-9_\-:./]{1,100}")


def settings_problems(endpoint: str, service: str, tags: str | None) -> list[str]:
    """What is wrong with the settings of OUTPUT_FORMAT=datadog (none when they are usable)."""
    problems = []
    if endpoint and not endpoint.split("?", 1)[0].rstrip("/").endswith("/api/v2/logs"):
        problems.append(
            f"{HTTP_ENDPOINT} must be Datadog's logs intake when {OUTPUT_FORMAT}=datadog "
            "(https://http-intake.logs.datadoghq.com/api/v2/logs, or your site's)"
        )
    if not _SERVICE.fullmatch(service):
        problems.append(f"{DD_SERVICE} must be 1-100 letters, digits or _ - : . / (got {service!r})")
    bad = [tag for tag in (tags or "").split(",") if tags and not _TAG.fullmatch(tag.strip())]
    if bad:
        problems.append(
            f"{DD_TAGS} must be comma-separated key:value tags, each starting with a letter "
            f"(got {', '.join(repr(tag) for tag in bad[:3])})"
        )
    return problems


class DatadogLogs:
    """Log entries joined with "," inside ``[`` ... ``]``."""

    name = "datadog"
    content_type = "application/json"
    framing = Framing(prefix=b"[", separator=b",", suffix=b"]")
    extra_headers = ()
    accepts = "Datadog's logs intake (HTTP_ENDPOINT is https://http-intake.logs.<site>/api/v2/logs)"

    def __init__(self, config: Config) -> None:
        self._service = config.dd_service
        self._tags = ",".join(tag.strip() for tag in config.dd_tags.split(",")) if config.dd_tags else None

    def encode(self, record: dict[str, Any]) -> bytes:
        """The entry: Datadog's reserved attributes, then the record's fields."""
        source = SOURCE if "s3_key" in record else CLOUDWATCH_SOURCE
        entry: dict[str, Any] = {"ddsource": source, "service": self._service}
        host = record.get("elb")
        if isinstance(host, str) and host:
            entry["hostname"] = host
        if self._tags:
            entry["ddtags"] = self._tags
        nanoseconds = record_time_ns(record)
        if nanoseconds is not None:
            entry["timestamp"] = nanoseconds // 1_000_000
        entry.update(record)
        return jsonutil.dumps(entry)

    def read_response(self, response: HttpResponse, sent: Batch) -> Verdict:
        """202 (any 2xx): accepted; 408, 429 and 5xx: again; 400, 401, 403, 413: refused."""
        return status_verdict(response, sent) or DELIVERED
