"""Progress for long command-line runs (replay, replay --via-lambda): one redrawn status line on a terminal,
one line per file otherwise (a log file, CI output or a pipe gets lines it can keep, without carriage
returns)."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "format_bytes", "format_duration", "is_terminal"]

# A terminal line is redrawn at most this often (files can finish thousands of times a second).
DEFAULT_REDRAW_SECONDS = 0.1

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_bytes(count: float) -> str:
    """1536 -> '1.5 KiB'; whole bytes below 1 KiB."""
    value = float(count)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def count_of(count: int, noun: str) -> str:
    """(1, "file") -> '1 file'; (1500, "file") -> '1,500 files'."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def format_duration(seconds: float) -> str:
    """42.3 -> '42s', 754 -> '12m34s', 7384 -> '2h03m'."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class Progress:
    """Files done out of a known total, with lines, bytes, rate and an ETA by bytes.

    ``tty`` defaults to ``stream.isatty()``. On a terminal, ``start``/``finish`` redraw one status line and
    ``note`` prints a lasting line above it; elsewhere ``finish`` prints one line per file and ``start``
    prints nothing. ``action`` is the word for a file done ("sent"); ``lines=False`` leaves line counts
    and rates out, for runs that hand files on without reading them (replay --via-lambda).
    """

    def __init__(
        self,
        total_files: int,
        total_bytes: int,
        *,
        stream: TextIO | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        columns: Callable[[], int] | None = None,
        redraw_seconds: float = DEFAULT_REDRAW_SECONDS,
        action: str = "sent",
        lines: bool = True,
    ) -> None:
        self.total_files = total_files
        self.total_bytes = total_bytes
        self._stream = stream if stream is not None else sys.stderr
        self.tty = is_terminal(self._stream) if tty is None else tty
        self._clock = clock
        self._columns = columns or (lambda: shutil.get_terminal_size((100, 24)).columns)
        self._redraw_seconds = redraw_seconds
        self._action = action
        self._count_lines = lines
        self._started = clock()
        self._last_draw = -float("inf")
        self._shown = False  # a status line is on screen (terminal only)
        self._current = ""
        self.files_done = 0
        self.lines = 0
        self.bytes_done = 0
        self._reading = 0  # bytes of the current file read so far

    # --- events ------------------------------------------------------------------------------------------

    def start(self, name: str) -> None:
        """A file is about to be sent."""
        self._current = name
        if self.tty:
            self._draw(force=False)

    def read(self, count: int) -> None:
        """``count`` more bytes of the current file were read: moves the terminal line within big files."""
        self._reading += count
        if self.tty:
            self._draw(force=False)

    def finish(self, name: str, *, ok: bool, lines: int, size: int, seconds: float, error: str = "") -> None:
        """A file is done (``size``: its bytes in S3, which the ETA is measured in)."""
        self._reading = 0
        self.files_done += 1
        self.lines += lines
        self.bytes_done += size
        if not self.tty:
            position = f"[{self.files_done}/{self.total_files}]"
            done = f"{position} {self._action} {name}"
            if ok and self._count_lines:
                line = f"{done} ({lines:,} lines, {format_bytes(size)}, {seconds:.2f}s)"
            elif ok:
                line = f"{done} ({format_bytes(size)})"
            else:
                line = f"{position} FAILED {name}: {error}"
            self._write(line + "\n")
            return
        if not ok:
            self.note(f"FAILED {name}: {error}")
        self._current = ""
        self._draw(force=self.files_done == self.total_files)

    def note(self, message: str) -> None:
        """A line that stays (a failure, a warning), printed above the status line on a terminal."""
        if self.tty and self._shown:
            self._write("\r\x1b[K")
            self._shown = False
        self._write(message + "\n")
        if self.tty:
            self._draw(force=True)

    def close(self) -> None:
        """End the status line so what follows starts on a fresh line."""
        if self.tty and self._shown:
            self._write("\n")
            self._shown = False

    # --- rendering ---------------------------------------------------------------------------------------

    def status(self) -> str:
        """The status line's text: files, percentage by bytes, lines, bytes, rate, ETA, current file."""
        elapsed = max(self._clock() - self._started, 1e-9)
        done = min(self.bytes_done + self._reading, self.total_bytes)
        parts = [f"{self.files_done}/{self.total_files} files"]
        if self.total_bytes:
            parts.append(f"{100 * done / self.total_bytes:.0f}%")
        if self._count_lines:
            parts.append(f"{self.lines:,} lines")
        parts.append(f"{format_bytes(done)}/{format_bytes(self.total_bytes)}")
        if self._count_lines:
            parts.append(f"{self.lines / elapsed:,.0f} lines/s")
        if 0 < done < self.total_bytes:
            remaining = (self.total_bytes - done) * elapsed / done
            parts.append(f"ETA {format_duration(remaining)}")
        elif self.files_done >= self.total_files:
            parts.append(f"done in {format_duration(elapsed)}")
        text = "  ".join(parts)
        if self._current:
            text += f"  {self._current}"
        return text

    def _draw(self, *, force: bool) -> None:
        now = self._clock()
        if not force and now - self._last_draw < self._redraw_seconds:
            return
        self._last_draw = now
        width = max(self._columns() - 1, 20)
        text = self.status()
        if len(text) > width:
            text = text[: width - 3] + "..."
        self._write("\r\x1b[K" + text)
        self._shown = True

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal (a closed stream or one without ``isatty`` is not)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        return False
