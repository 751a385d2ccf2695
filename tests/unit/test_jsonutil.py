"""Compact JSON helpers: a record's JSON written as a JSON string, as Loki's line holds it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from forwarder import jsonutil

RECORDS: list[Any] = [
    {"request": 'GET "/a\\b" HTTP/1.1', "user_agent": "Mozilla/5.0 \u00e9\u4e2d\U0001f600"},
    {"raw": "tab\there\nnew line\r\x00\x1f\x7f", "path": "C:\\\\temp\\"},
    {"u2028": "\u2028\u2029", "quote_end": 'x\\"', "n": 1, "f": 0.5, "none": None, "list": ['"', "\\"]},
    {"big": 2**70},  # beyond orjson's range: the standard library writes it
    "a plain string",
    [],
]


@pytest.mark.parametrize("record", RECORDS)
def test_a_record_as_a_string_is_the_json_of_its_json_text(record: Any) -> None:
    written = jsonutil.dumps_as_string(record)
    assert written == jsonutil.dumps(jsonutil.dumps(record).decode())
    assert json.loads(json.loads(written)) == record
