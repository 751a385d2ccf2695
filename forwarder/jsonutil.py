"""Compact JSON to bytes: orjson when installed (several times faster), the standard library otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "dumps_line"]


def _std_dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


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
        # orjson refuses integers beyond 64 bits (a corrupt log field can be one); json does not.
        return _std_dumps(obj)


def dumps_line(obj: Any) -> bytes:
    """`dumps(obj)` followed by a newline, in one call (JSON Lines output)."""
    if _fast_dumps is None:
        return _std_dumps(obj) + b"\n"
    try:
        return _fast_dumps(obj, option=_APPEND_NEWLINE)
    except TypeError:
        return _std_dumps(obj) + b"\n"
