"""The replay progress display: one redrawn line on a terminal, one line per file elsewhere."""

from __future__ import annotations

import io

import pytest

from forwarder.progress import Progress, count_of, format_bytes, format_duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 1024**2, "5.0 MiB"), (3 * 1024**4, "3.0 TiB")],
)
def test_format_bytes(count: int, text: str) -> None:
    assert format_bytes(count) == text


def test_count_of_says_one_file_and_two_files() -> None:
    assert [count_of(n, "file") for n in (0, 1, 2, 1500)] == ["0 files", "1 file", "2 files", "1,500 files"]


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (42.4, "42s"), (754, "12m34s"), (7384, "2h03m"), (-3, "0s")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_not_a_terminal_prints_one_plain_line_per_file() -> None:
    stream = io.StringIO()  # isatty() is False, like a pipe or a CI log
    progress = Progress(3, 3000, stream=stream, clock=Clock())
    progress.start("s3://b/one.log.gz")
    assert stream.getvalue() == ""  # nothing until the file is done
    progress.finish("s3://b/one.log.gz", ok=True, lines=1200, size=1000, seconds=0.25)
    progress.start("s3://b/two.log.gz")
    progress.finish("s3://b/two.log.gz", ok=False, lines=0, size=1000, seconds=0.1, error="HTTP 401")
    progress.close()

    assert stream.getvalue().splitlines() == [
        "[1/3] sent s3://b/one.log.gz (1,200 lines, 1000 B, 0.25s)",
        "[2/3] FAILED s3://b/two.log.gz: HTTP 401",
    ]
    assert "\r" not in stream.getvalue()


def test_terminal_redraws_one_line_with_rate_and_eta() -> None:
    clock = Clock()
    stream = Terminal()
    progress = Progress(4, 4000, stream=stream, clock=clock, columns=lambda: 200)
    assert progress.tty
    clock.now += 10
    progress.start("s3://b/one.log.gz")
    progress.finish("s3://b/one.log.gz", ok=True, lines=5000, size=1000, seconds=10)

    status = progress.status()
    # A quarter of the bytes in 10 s: 30 s to go; 5000 lines in 10 s.
    assert status.startswith("1/4 files  25%  5,000 lines  1000 B/3.9 KiB  500 lines/s  ETA 30s")
    assert stream.getvalue().startswith("\r\x1b[K")
    assert "\n" not in stream.getvalue()  # the same line, redrawn

    progress.close()
    assert stream.getvalue().endswith("\n")


def test_terminal_keeps_failures_on_their_own_line_above_the_status() -> None:
    clock = Clock()
    stream = Terminal()
    progress = Progress(2, 2000, stream=stream, clock=clock, columns=lambda: 200)
    progress.start("s3://b/one.log.gz")
    progress.finish("s3://b/one.log.gz", ok=False, lines=0, size=1000, seconds=1, error="access denied")
    lasting = [line.split("\x1b[K")[-1] for line in stream.getvalue().split("\n")[:-1]]
    assert lasting == ["FAILED s3://b/one.log.gz: access denied"]


def test_terminal_redraws_at_most_ten_times_a_second_but_always_shows_the_end() -> None:
    clock = Clock()
    stream = Terminal()
    progress = Progress(100, 100, stream=stream, clock=clock, columns=lambda: 200)
    for number in range(100):
        clock.now += 0.001  # 100 small files in 0.1 s
        progress.start(f"s3://b/{number}.log.gz")
        progress.finish(f"s3://b/{number}.log.gz", ok=True, lines=1, size=1, seconds=0.001)
    draws = stream.getvalue().count("\r")
    assert 1 <= draws <= 3
    assert "100/100 files  100%" in stream.getvalue().rsplit("\r", 1)[-1]


def test_terminal_line_is_cut_to_the_terminal_width() -> None:
    stream = Terminal()
    progress = Progress(1, 10, stream=stream, clock=Clock(), columns=lambda: 40)
    progress.start("s3://bucket/" + "x" * 200)
    drawn = stream.getvalue().rsplit("\x1b[K", 1)[-1]
    assert len(drawn) == 39
    assert drawn.endswith("...")


def test_terminal_line_moves_while_a_big_file_is_read() -> None:
    clock = Clock()
    stream = Terminal()
    progress = Progress(2, 2000, stream=stream, clock=clock, columns=lambda: 200)
    progress.start("s3://b/big.log.gz")
    clock.now += 5
    progress.read(500)  # a quarter of all bytes after 5 s: 15 s to go

    assert (
        stream.getvalue()
        .rsplit("\x1b[K", 1)[-1]
        .startswith("0/2 files  25%  0 lines  500 B/2.0 KiB  0 lines/s  ETA 15s  s3://b/big.log.gz")
    )
    clock.now += 5
    progress.read(500)
    progress.finish("s3://b/big.log.gz", ok=True, lines=10, size=1000, seconds=10)
    assert progress.status().startswith("1/2 files  50%")  # read bytes are not counted twice


def test_reading_prints_nothing_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(1, 1000, stream=stream, clock=Clock())
    progress.read(500)
    assert stream.getvalue() == ""


def test_progress_of_enqueued_files_shows_no_line_counts() -> None:
    stream = io.StringIO()
    progress = Progress(2, 3000, stream=stream, action="enqueued", lines=False)
    progress.finish("s3://b/one.log.gz", ok=True, lines=0, size=2048, seconds=0)
    progress.finish("s3://b/two.log.gz", ok=False, lines=0, size=952, seconds=0, error="refused")
    assert stream.getvalue().splitlines() == [
        "[1/2] enqueued s3://b/one.log.gz (2.0 KiB)",
        "[2/2] FAILED s3://b/two.log.gz: refused",
    ]
    assert "lines" not in progress.status()
