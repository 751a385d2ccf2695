"""Messages of no known format: sent as they are, in `raw`, without a parse error."""

from __future__ import annotations

from typing import Any

__all__ = ["parse_raw"]


def parse_raw(line: str) -> dict[str, Any]:
    """Any line -> {"raw": line}."""
    return {"raw": line}
