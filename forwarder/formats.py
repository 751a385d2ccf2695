"""How log messages are parsed, as configured: a fixed format for CloudWatch Logs, a custom VPC flow format.

S3 objects are typed by their file names (forwarder.parsers.detect_log_type); CloudWatch Logs messages
carry no such name, so each is detected by its content unless CLOUDWATCH_LOG_FORMAT names one format for
all of them. VPC_FLOW_LOG_FORMAT is the flow log's own format string, for flow logs created with a custom
field list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from forwarder.parsers import LOG_TYPES
from forwarder.parsers.vpc_flow import field_list

CLOUDWATCH_LOG_FORMAT = "CLOUDWATCH_LOG_FORMAT"
VPC_FLOW_LOG_FORMAT = "VPC_FLOW_LOG_FORMAT"

AUTO = "auto"


@dataclass(frozen=True, slots=True)
class FormatSettings:
    """None for either: detect each CloudWatch Logs message; the default version-2 flow log fields."""

    cloudwatch_format: str | None = None
    vpc_flow_fields: tuple[str, ...] | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], problems: list[str]) -> FormatSettings:
        """Read both variables; append what is wrong with them to `problems`."""
        cloudwatch_format = environ.get(CLOUDWATCH_LOG_FORMAT, "").strip().lower() or AUTO
        if cloudwatch_format != AUTO and cloudwatch_format not in LOG_TYPES:
            problems.append(
                f"{CLOUDWATCH_LOG_FORMAT} must be {AUTO} or one of {', '.join(LOG_TYPES)} "
                f"(got {cloudwatch_format!r})"
            )
            cloudwatch_format = AUTO
        fields = None
        vpc_format = environ.get(VPC_FLOW_LOG_FORMAT, "").strip()
        if vpc_format:
            try:
                fields = field_list(vpc_format)
            except ValueError as exc:
                problems.append(f"{VPC_FLOW_LOG_FORMAT} is not a flow log format: {exc}")
        return cls(
            cloudwatch_format=None if cloudwatch_format == AUTO else cloudwatch_format,
            vpc_flow_fields=fields,
        )
