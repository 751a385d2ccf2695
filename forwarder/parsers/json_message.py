"""Any message that is one JSON object: its fields, as they are."""

from __future__ import annotations

import json
from typing import Any

from forwarder.jsonutil import without_surrogates
from forwarder.parsers import FormatMismatchError

__all__ = ["parse_json", "parse_json_object"]


def parse_json_object(line: str) -> dict[str, Any]:
    """The JSON object the line holds; FormatMismatchError if it is not JSON or not an object."""
    try:
        document = json.loads(line)
    except ValueError:
        raise FormatMismatchError("not JSON") from None
    if not isinstance(document, dict):
        raise FormatMismatchError("JSON, but not an object")
    if "\\ud" in line or "\\uD" in line:  # an escaped surrogate: a lone one is no Unicode text
        document = without_surrogates(document)
    return document


def parse_json(line: str) -> dict[str, Any]:
    """A JSON object message -> its fields."""
    return parse_json_object(line)
