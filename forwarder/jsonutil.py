"""Compact JSON to bytes: orjson when installed (several times faster), the standard library otherwise.

Whatever a record holds, the bytes are JSON as RFC 8259 defines it, which intakes parse: UTF-8 (a lone
surrogate, which Python's json reads from an escape such as "\\udcff" but no UTF-8 can hold, is written
U+FFFD, as the reader writes bytes that are not UTF-8), and NaN and infinities as null (as orjson writes
them; JSON has no such numbers). Integers beyond 64 bits, which orjson refuses, are written exactly.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "dumps_line", "without_surrogates"]

_SURROGATE = re.compile("[\ud800-\udfff]")
_REPLACEMENT = "\ufffd"


def without_surrogates(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings (keys too, at any depth) replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub(_REPLACEMENT, value)
    if isinstance(value, dict):
        return {without_surrogates(k): without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_surrogates(item) for item in value]
    return value


def _jsonable(value: Any) -> Any:
    """``value`` as JSON can hold it: lone surrogates replaced, NaN and infinities as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return _SURROGATE.sub(_REPLACEMENT, value)
    if isinstance(value, dict):
        return {_jsonable(k) if isinstance(k, str) else k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def _std_dumps(obj: Any) -> bytes:
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except ValueError:  # NaN or an infinity (ValueError), a lone surrogate (UnicodeEncodeError)
        return json.dumps(_jsonable(obj), separators=(",", ":"), ensure_ascii=False).encode()


_fast_dumps: Callable[..., bytes] | None
try:
    import orjson
except ImportError:
    _fast_dumps = None
    _APPEND_NEWLINE = 0
else:
    _fast_dumps = orjson.dumps
    _APPEND_NEWLINE = orjson.OPT_APPEND_NEWLINE


def dumps(obj: Any) -> bytes:
    """Serialise `obj` to compact UTF-8 JSON bytes (the standard library for ints orjson refuses)."""
    if _fast_dumps is None:
        return _std_dumps(obj)
    try:
        return _fast_dumps(obj)
    except TypeError:
        # orjson refuses integers beyond 64 bits (a corrupt log field can be one) and lone surrogates.
        return _std_dumps(obj)


def dumps_line(obj: Any) -> bytes:
    """`dumps(obj)` followed by a newline, in one call (JSON Lines output)."""
    if _fast_dumps is None:
        return _std_dumps(obj) + b"\n"
    try:
        return _fast_dumps(obj, option=_APPEND_NEWLINE)
    except TypeError:
        return _std_dumps(obj) + b"\n"
