"""What a hostile case leaves behind, captured the way the outside world sees it, and leak checks.

Loaded by the hostile-input test modules with ``pytest_plugins = ["conftest_forwarder", "hostile"]``: the
``hostile`` fixture runs the Lambda handler on log files and returns an ``Outcome`` holding the log lines as
the forwarder's own JSON formatter writes them, the metric lines, the handler's answer or exception and
the dead-letter record Lambda would write; ``assert_nothing_leaked`` looks in all of them for any run of 6
characters of the credential.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from alb_log_factory import log_key
from aws_events import FakeContext, Stored, destination_record, s3_notification, sns_event, sqs_event

from forwarder import handler
from forwarder.metrics import JsonFormatter

TOKEN = "hx7Qm2vR9pLs4TzW8kNcJ3"
USERNAME = "alb-forwarder"
LINES = 12
RUN = 6


class FormattedRecords(logging.Handler):
    """Every log record as the forwarder's formatter writes it (the handler installs that formatter)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def formatted(sleeps: list[float]) -> Iterator[FormattedRecords]:
    records = FormattedRecords()
    root = logging.getLogger()
    root.addHandler(records)
    yield records
    root.removeHandler(records)


@dataclass
class Outcome:
    """What one invocation left behind."""

    event: dict[str, Any]
    answer: Any
    error: Exception | None
    seconds: float
    logs: list[str]
    metrics: list[str]
    lines_in_files: int

    @property
    def summaries(self) -> list[dict[str, Any]]:
        return [doc["summary"] for doc in map(json.loads, self.logs) if doc["logger"] == "forwarder.summary"]

    @property
    def summary(self) -> dict[str, Any]:
        (summary,) = self.summaries
        return summary

    def everything(self) -> list[str]:
        """Each text the outside world gets to see."""
        texts = [*self.logs, *self.metrics, json.dumps(self.answer)]
        # The same lines decoded, in case an escape (\\u20ac) hides a run from the raw text.
        texts += [json.dumps(json.loads(line), ensure_ascii=False) for line in self.logs]
        if self.error is not None:
            texts.append("".join(traceback.format_exception(self.error)))
            record = destination_record(
                self.event, error_type=type(self.error).__name__, error_message=str(self.error)
            )
            texts.append(json.dumps(record, ensure_ascii=False))
        return texts


def runs(*forms: str) -> set[str]:
    return {form[i : i + RUN] for form in forms for i in range(len(form) - RUN + 1)}


def assert_nothing_leaked(outcome: Outcome, *forms: str) -> None:
    assert outcome.logs, "no log line was captured"
    leaked = sorted({run for text in outcome.everything() for run in runs(*forms) if run in text})
    assert leaked == []


def bearer_forms(token: str = TOKEN) -> tuple[str, ...]:
    # The header is "Bearer <token>": its secret part is the token (the word Bearer is no secret).
    return (token,)


def basic_forms(password: str = TOKEN, username: str = USERNAME) -> tuple[str, ...]:
    return (password, base64.b64encode(f"{username}:{password}".encode()).decode())


def create_secret(value: str) -> str:
    client = boto3.client("secretsmanager")
    return str(client.create_secret(Name="alb-ingest-token", SecretString=value)["ARN"])


@pytest.fixture
def hostile(
    invoke: Any,
    put_log: Any,
    forwarder_env: Callable[..., None],
    formatted: FormattedRecords,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., Outcome]:
    """Run the handler on log files: ``hostile(trigger="sns"|"sqs", files=1, context=None, objects=None)``
    (``objects``: files already stored, instead of ``files`` fresh ones)."""
    forwarder_env(LOG_LEVEL="DEBUG", HTTP_MAX_RETRIES="1")
    counter = iter(range(1000))

    def run(
        *,
        trigger: str = "sns",
        files: int = 1,
        context: FakeContext | None = None,
        objects: list[Stored] | None = None,
    ) -> Outcome:
        stored = objects or [
            put_log(log_key(suffix=f"hostile{next(counter):02d}"), count=LINES) for _ in range(files)
        ]
        if trigger == "sns":
            event = sns_event(s3_notification(*stored))
        else:
            event = sqs_event(*(s3_notification(obj) for obj in stored))
        formatted.lines.clear()
        capsys.readouterr()
        answer: Any = None
        error: Exception | None = None
        started = time.monotonic()
        try:
            answer = handler.handler(event, context) if context else invoke(event)
        except Exception as exc:
            error = exc
        seconds = time.monotonic() - started
        assert isinstance(formatted.formatter, JsonFormatter)
        metrics = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
        lines = sum(len(obj.lines) for obj in stored)
        return Outcome(event, answer, error, seconds, list(formatted.lines), metrics, lines)

    return run


def bearer_secret(forwarder_env: Callable[..., None], token: str = TOKEN) -> str:
    arn = create_secret(token)
    forwarder_env(HTTP_AUTH_TYPE="bearer", HTTP_AUTH_SECRET_ARN=arn)
    return arn


def basic_secret(forwarder_env: Callable[..., None], password: str = TOKEN) -> str:
    arn = create_secret(password)
    forwarder_env(HTTP_AUTH_TYPE="basic", HTTP_AUTH_USERNAME=USERNAME, HTTP_AUTH_SECRET_ARN=arn)
    return arn
