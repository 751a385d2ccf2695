"""The time left in this invocation, so long steps stop before Lambda kills the function."""

from __future__ import annotations

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
