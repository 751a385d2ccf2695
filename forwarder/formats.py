"""How log messages are parsed, as configured: a fixed format for CloudWatch Logs, a custom VPC flow format,
custom grok formats.

S3 objects are typed by their file names (forwarder.parsers.detect_log_type); CloudWatch Logs messages
carry no such name, so each is detected by its content unless CLOUDWATCH_LOG_FORMAT names one format for
all of them. VPC_FLOW_LOG_FORMAT is the flow log's own format string, for flow logs created with a custom
field list. CUSTOM_FORMATS (JSON) names grok formats and where they apply: objects under an S3 key prefix,
log groups whose name matches a glob; the first format listed that applies wins over the other rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from forwarder.parsers import LOG_TYPES, ParseFunction
from forwarder.parsers.grok import GrokError, compile_grok, grok_parser
from forwarder.parsers.vpc_flow import field_list

CLOUDWATCH_LOG_FORMAT = "CLOUDWATCH_LOG_FORMAT"
VPC_FLOW_LOG_FORMAT = "VPC_FLOW_LOG_FORMAT"
CUSTOM_FORMATS = "CUSTOM_FORMATS"

AUTO = "auto"
# A custom format's name is its records' log_type: short, lower case, not one of the built-in types.
_FORMAT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CUSTOM_KEYS = frozenset({"name", "pattern", "s3_prefix", "log_group"})


@dataclass(frozen=True, slots=True)
class CustomFormat:
    """A grok format and where it applies: S3 key prefixes, log group name globs (fnmatch, case-sensitive)."""

    name: str
    pattern: str
    parse: ParseFunction = field(repr=False, compare=False)
    s3_prefixes: tuple[str, ...] = ()
    log_groups: tuple[str, ...] = ()

    def applies_to_key(self, key: str) -> bool:
        return any(key.startswith(prefix) for prefix in self.s3_prefixes)

    def applies_to_log_group(self, log_group: str) -> bool:
        return any(fnmatchcase(log_group, glob) for glob in self.log_groups)


@dataclass(frozen=True, slots=True)
class FormatSettings:
    """None for either: detect each CloudWatch Logs message; the default version-2 flow log fields."""

    cloudwatch_format: str | None = None
    vpc_flow_fields: tuple[str, ...] | None = None
    custom_formats: tuple[CustomFormat, ...] = ()

    def format_for_key(self, key: str) -> CustomFormat | None:
        """The custom format of the S3 object `key`, if one is configured for it."""
        return next((f for f in self.custom_formats if f.applies_to_key(key)), None)

    def format_for_log_group(self, log_group: str) -> CustomFormat | None:
        """The custom format of the messages of `log_group`, if one is configured for it."""
        return next((f for f in self.custom_formats if f.applies_to_log_group(log_group)), None)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], problems: list[str]) -> FormatSettings:
        """Read the format variables; append what is wrong with them to `problems`."""
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
            custom_formats=custom_formats(environ.get(CUSTOM_FORMATS, ""), problems),
        )


def custom_formats(text: str, problems: list[str]) -> tuple[CustomFormat, ...]:
    """CUSTOM_FORMATS read and every pattern compiled; what is wrong goes to `problems`, naming the format.

    The value is a JSON list of objects: {"name", "pattern", "s3_prefix" and/or "log_group"}, the last
    two a string or a list of strings.
    """
    if not text.strip():
        return ()
    try:
        document = json.loads(text)
    except ValueError as exc:
        problems.append(f"{CUSTOM_FORMATS} is not JSON ({exc})")
        return ()
    if not isinstance(document, list) or not all(isinstance(item, dict) for item in document):
        problems.append(f'{CUSTOM_FORMATS} must be a JSON list of objects ({{"name": ..., "pattern": ...}})')
        return ()
    formats: list[CustomFormat] = []
    for index, item in enumerate(document):
        try:
            formats.append(_custom_format(item, index, {f.name for f in formats}))
        except ValueError as exc:
            problems.append(f"{CUSTOM_FORMATS}: {exc}")
    return tuple(formats)


def _custom_format(item: dict[str, Any], index: int, taken: set[str]) -> CustomFormat:
    name = item.get("name")
    if not isinstance(name, str) or not _FORMAT_NAME.fullmatch(name):
        raise ValueError(
            f"format {index + 1} needs a name of lower-case letters, digits and _ (got {name!r})"
        )
    where = f"format {name!r}"
    if name in LOG_TYPES or name in taken:
        raise ValueError(f"{where}: the name is {'a built-in log type' if name in LOG_TYPES else 'taken'}")
    unknown = sorted(set(item) - _CUSTOM_KEYS)
    if unknown:
        raise ValueError(
            f"{where}: unknown keys {', '.join(unknown)} (use {', '.join(sorted(_CUSTOM_KEYS))})"
        )
    pattern = item.get("pattern")
    if not isinstance(pattern, str):
        raise ValueError(f"{where} needs a pattern (a grok pattern, as a string)")
    prefixes, globs = _strings(item, "s3_prefix", where), _strings(item, "log_group", where)
    if not prefixes and not globs:
        raise ValueError(f"{where} needs an s3_prefix or a log_group to say where it applies")
    try:
        grok = compile_grok(pattern)
    except GrokError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return CustomFormat(name, pattern, grok_parser(name, grok), prefixes, globs)


def _strings(item: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = item.get(key, ())
    values = (value,) if isinstance(value, str) else value
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) and v for v in values):
        raise ValueError(f"{where}: {key} must be a non-empty string or a list of them")
    return tuple(values)
