"""What the demo prints: one line per step with a tick or a cross and its time, plus indented details.

Colours only on a terminal (and never with NO_COLOR set); ticks fall back to ASCII when the output
encoding cannot show them, so a pipe into a file or a CI log reads as well as a terminal.
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

_WIDTH = 86


def _wrap(text: str, *, initial_indent: str = "", subsequent_indent: str = "") -> list[str]:
    """Lines of at most the demo's width, cut at spaces only: ARNs and URLs contain hyphens and may be
    longer than a line, and a reader copies them whole."""
    return textwrap.wrap(
        text,
        width=_WIDTH + 14,
        initial_indent=initial_indent,
        subsequent_indent=subsequent_indent,
        break_on_hyphens=False,
        break_long_words=False,
    )


class StepError(Exception):
    """A step did not do what it should; the message is the reason shown under the cross."""


class Console:
    """Prints steps and details; `quiet` keeps only failures and the final verdict."""

    def __init__(
        self, stream: TextIO | None = None, *, quiet: bool = False, color: bool | None = None
    ) -> None:
        self.stream = stream or sys.stdout
        self.quiet = quiet
        if color is None:
            color = (
                self.stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
            )
        self.color = color
        encoding = getattr(self.stream, "encoding", None) or "ascii"
        try:
            "✓✗·".encode(encoding)
            self.tick, self.cross, self.dot = "✓", "✗", "·"
        except (UnicodeEncodeError, LookupError):
            self.tick, self.cross, self.dot = "+", "x", "-"
        self.failed_step: str | None = None
        self.steps_ok = 0
        # Lines written inside a step wait for its tick or cross, so they read under it.
        self._held: list[tuple[str, bool]] | None = None

    # --- styling ---------------------------------------------------------------------------------------

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def green(self, text: str) -> str:
        return self._paint(text, "32")

    def red(self, text: str) -> str:
        return self._paint(text, "31")

    def dim(self, text: str) -> str:
        return self._paint(text, "2")

    def bold(self, text: str) -> str:
        return self._paint(text, "1")

    # --- output ----------------------------------------------------------------------------------------

    def write(self, text: str = "", *, always: bool = False) -> None:
        if self._held is not None:
            self._held.append((text, always))
            return
        self._emit(text, always=always)

    def _emit(self, text: str, *, always: bool) -> None:
        if self.quiet and not always:
            return
        self.stream.write(text + "\n")
        self.stream.flush()

    def heading(self, text: str) -> None:
        self.write("")
        self.write(self.bold(text))

    def detail(self, text: str, *, always: bool = False, wrap: bool = False) -> None:
        """An indented line under the step it belongs to (multi-line text keeps its own layout)."""
        lines = _wrap(text, subsequent_indent="  ") if wrap else text.splitlines()
        for line in lines or [""]:
            self.write(f"      {line}", always=always)

    def note(self, text: str) -> None:
        """Something the reader should know about how the demo stands in for AWS (wrapped)."""
        for line in _wrap(text, initial_indent=f"{self.dot} ", subsequent_indent="  "):
            self.write(self.dim(f"      {line}"))

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        """Run a step: tick and time on success; cross, time and reason on failure (then re-raise)."""
        started = time.monotonic()
        self._held = []
        try:
            yield
        except BaseException as exc:
            held, self._held = self._held, None
            self.failed_step = title
            self._line(self.red(self.cross), title, time.monotonic() - started, always=True)
            for text, _ in held:  # on failure everything the step said helps
                self._emit(text, always=True)
            reason = str(exc) if isinstance(exc, StepError) else f"{type(exc).__name__}: {exc}"
            for line in _wrap(reason) or [""]:
                self._emit(f"      {self.red(line)}", always=True)
            raise
        held, self._held = self._held, None
        self.steps_ok += 1
        self._line(self.green(self.tick), title, time.monotonic() - started)
        for text, always in held:
            self._emit(text, always=always)

    def _line(self, mark: str, title: str, seconds: float, *, always: bool = False) -> None:
        timing = f"{seconds:6.2f} s"
        pad = max(_WIDTH - len(title) - len(timing) - 4, 1)
        self._emit(f"  {mark} {title}{' ' * pad}{self.dim(timing)}", always=always)
