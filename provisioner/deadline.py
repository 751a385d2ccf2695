"""The time left in this invocation, so long steps stop before Lambda kills the function."""

from __future__ import annotations

import time
from collections.abc import Callable

from provisioner.errors import DeadlineError


class Deadline:
    """Remaining time from the Lambda context, with a reserve kept for undo work and the answer."""

    def __init__(self, remaining_ms: Callable[[], int], reserve_seconds: float = 25.0) -> None:
        self._remaining_ms = remaining_ms
        self.reserve_seconds = reserve_seconds

    @classmethod
    def unlimited(cls) -> Deadline:
        """For code paths and tests that have no Lambda context."""
        return cls(lambda: 3_600_000, reserve_seconds=0.0)

    @classmethod
    def after(cls, seconds: float, reserve_seconds: float = 0.0) -> Deadline:
        """A deadline `seconds` from now (monotonic clock)."""
        end = time.monotonic() + seconds
        return cls(lambda: int((end - time.monotonic()) * 1000), reserve_seconds)

    def remaining(self) -> float:
        """Seconds left before the invocation ends."""
        return self._remaining_ms() / 1000.0

    def check(self, doing: str) -> None:
        """Raise DeadlineError when less than the reserve is left before starting `doing`."""
        left = self.remaining()
        if left < self.reserve_seconds:
            raise DeadlineError(
                f"stopped before {doing}: only {left:.0f} s of the function's time were left "
                f"(kept {self.reserve_seconds:.0f} s in reserve); raise the provisioner's timeout and retry"
            )
