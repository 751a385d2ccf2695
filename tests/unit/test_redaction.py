"""Masking of credential runs: the redactor, the process-wide known forms, the JSON log formatter's guard."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from forwarder import redaction
from forwarder.metrics import JsonFormatter, PlainFormatter
from forwarder.redaction import MASK, Redactor

SECRET = "hx7Qm2vR9pLs4TzW8kNcJ3"


@pytest.fixture(autouse=True)
def no_known_secrets() -> Iterator[None]:
    redaction.forget()
    yield
    redaction.forget()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"invalid token {SECRET}", f"invalid token {MASK}"),
        (f"token {SECRET[:12]}... is not valid", f"token {MASK}... is not valid"),
        (f"denied:key=x{SECRET[5:15]}y;", f"denied:key=x{MASK}y;"),
        (f"{SECRET[:6]}", MASK),
        (f"{SECRET[:5]} is only five", f"{SECRET[:5]} is only five"),
        (f"{SECRET[:8]}-{SECRET[10:18]}", f"{MASK}-{MASK}"),  # two runs, kept apart
        (f"{SECRET}{SECRET}", MASK),  # touching runs merge
        ("nothing to see here", "nothing to see here"),
        ("", ""),
    ],
)
def test_every_run_of_six_or_more_is_masked(text: str, expected: str) -> None:
    assert Redactor([SECRET])(text) == expected


def test_several_forms_and_short_forms() -> None:
    redact = Redactor([SECRET, "YWxiOmh4N1Ft", "k-12"])
    assert redact("a YWxiOmh4 b k-12 c k-1") == f"a {MASK} b {MASK} c k-1"
    assert not Redactor([])
    assert Redactor([])("anything at all") == "anything at all"


def test_no_run_survives_whatever_surrounds_it() -> None:
    redact = Redactor([SECRET])
    for start in range(len(SECRET) - 5):
        for end in range(start + 6, len(SECRET) + 1):
            masked = redact(f"<<{SECRET[start:end]}>>")
            assert masked == f"<<{MASK}>>"


def test_known_forms_are_bounded_and_skip_short_ones() -> None:
    assert not redaction.known()
    redaction.remember(["v1"])  # too short to mask in every log line
    assert not redaction.known()
    for digit in "012345":
        redaction.remember([digit * 8])
    known = redaction.known()
    # The last four credentials stay known (a value from before a rotation may still be echoed).
    assert [known(digit * 8) for digit in "012345"] == ["0" * 8, "1" * 8, MASK, MASK, MASK, MASK]
    redaction.forget()
    assert redaction.known()("5" * 8) == "5" * 8


def record(
    message: str, *args: object, exc: BaseException | None = None, **extra: object
) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    entry = logging.LogRecord("urllib3.connection", logging.WARNING, __file__, 1, message, args, exc_info)
    for key, value in extra.items():
        setattr(entry, key, value)
    return entry


def test_formatter_masks_message_extras_and_exception() -> None:
    redaction.remember([SECRET])
    try:
        raise ValueError(f"unparsed data: 'Bearer {SECRET[2:14]}'")
    except ValueError as caught:
        error = caught
    line = JsonFormatter().format(
        record(
            "Failed to parse headers (url=%s): %s",
            "http://127.0.0.1/x",
            error,
            exc=error,
            summary={"error": f"echo {SECRET}", "lines": 3, "nested": [SECRET[4:11]]},
            other=object(),
        )
    )
    document = json.loads(line)
    assert SECRET[2:8] not in line and SECRET[4:10] not in line
    assert document["message"].endswith(f"unparsed data: 'Bearer {MASK}'")
    assert document["summary"] == {"error": f"echo {MASK}", "lines": 3, "nested": [MASK]}
    assert document["exception"].endswith(f"ValueError: unparsed data: 'Bearer {MASK}'")


def test_plain_formatter_masks_the_whole_line() -> None:
    """replay and redrive log plain lines on a terminal; the same last guard applies there."""
    redaction.remember([SECRET])
    try:
        raise ValueError(f"bad header {SECRET[3:13]}")
    except ValueError as caught:
        error = caught
    line = PlainFormatter("%(levelname)s %(name)s: %(message)s").format(
        record("echo %s", SECRET[:9], exc=error)
    )
    assert line.startswith(f"WARNING urllib3.connection: echo {MASK}")
    assert f"ValueError: bad header {MASK}" in line
    assert SECRET[3:9] not in line


def test_replay_logs_through_the_masking_formatter(monkeypatch: pytest.MonkeyPatch) -> None:
    from forwarder import replay

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    replay._configure_logging("INFO")
    (handler,) = root.handlers
    assert isinstance(handler.formatter, PlainFormatter)


def test_formatter_unchanged_without_known_secrets() -> None:
    entry = record("plain %s", "text", count=3)
    document = json.loads(JsonFormatter().format(entry))
    assert (document["message"], document["count"]) == ("plain text", 3)
