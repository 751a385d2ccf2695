"""Structured log lines: one JSON object per message, which crhelper's JSON formatter embeds as is."""

from __future__ import annotations

import json
import logging
from typing import Any

from provisioner.errors import show


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log `event` with fields; strings are sanitised (no control characters, bounded length)."""
    if not logger.isEnabledFor(level):
        return
    payload: dict[str, Any] = {"event": event}
    for key, value in fields.items():
        payload[key] = show(value, 500) if isinstance(value, str) else value
    logger.log(level, json.dumps(payload, default=str, sort_keys=False))
