"""How the demo lays out long lines: wrapped at spaces only, so an ARN or a URL is never cut in two."""

from __future__ import annotations

import io

import pytest
from script_modules import load_script

demo_output = load_script("demo/demo_output")

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:demo/ingest-token-wKacyW"
LONG_URL = "https://logs.example.com/" + "a" * 120


def _console() -> tuple[object, io.StringIO]:
    out = io.StringIO()
    return demo_output.Console(out, color=False), out


def _tokens(text: str) -> list[str]:
    return text.split()


@pytest.mark.parametrize("value", [SECRET_ARN, LONG_URL])
def test_detail_wraps_between_words_only(value: str) -> None:
    console, out = _console()
    text = (
        "environment: HTTP_ENDPOINT=https://127.0.0.1:8443/v1/ingest, HTTP_AUTH_HEADER_NAME=X-API-Key, "
        f"HTTP_AUTH_SECRET_ARN={value}, LOG_LEVEL=INFO"
    )
    console.detail(text, wrap=True)
    assert _tokens(out.getvalue()) == _tokens(text)


@pytest.mark.parametrize("value", [SECRET_ARN, LONG_URL])
def test_note_and_failure_reason_wrap_between_words_only(value: str) -> None:
    console, out = _console()
    note = f"the stand-in subscription for {value} is removed at the end of the demo, with everything else"
    console.note(note)
    assert _tokens(out.getvalue())[1:] == _tokens(note)  # after the leading dot

    console, out = _console()
    reason = f"the forwarder could not read {value}: access denied by the stand-in policy of the demo run"
    with pytest.raises(demo_output.StepError), console.step("a step"):
        raise demo_output.StepError(reason)
    shown = out.getvalue().split("\n", 1)[1]  # below the step's own line
    assert _tokens(shown) == _tokens(reason)
