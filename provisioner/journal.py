"""Undo journal: every change Create makes registers how to take it back."""

from __future__ import annotations

import logging
from collections.abc import Callable

from provisioner.errors import describe_aws_error
from provisioner.logs import log_event

logger = logging.getLogger(__name__)


class UndoJournal:
    """Undo steps run in reverse order, best effort: one failing undo does not stop the others."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], object]]] = []

    def add(self, description: str, undo: Callable[[], object]) -> None:
        """Register the undo of a change that has just succeeded."""
        self._steps.append((description, undo))

    def rollback(self) -> list[str]:
        """Run every undo, newest first; returns a description of each one that failed."""
        failures: list[str] = []
        while self._steps:
            description, undo = self._steps.pop()
            try:
                undo()
            except Exception as exc:  # noqa: BLE001 - keep undoing the rest; the failure is reported
                error = describe_aws_error(exc)
                failures.append(f"{description}: {error}")
                log_event(logger, "undo_failed", logging.ERROR, step=description, error=error)
            else:
                log_event(logger, "undone", step=description)
        return failures
