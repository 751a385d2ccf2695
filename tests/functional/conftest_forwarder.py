"""Fixtures for the forwarder's functional tests.

Loaded by the forwarder test modules with ``pytest_plugins = ["conftest_forwarder"]``. AWS is moto, started
(by conftest's ``aws``) before any boto3 client exists; the ingest side is a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import boto3
import pytest
from alb_log_factory import REGION, gzip_lines, make_alb_lines
from aws_events import BUCKET, FakeContext, Stored
from ingest_server import INTAKE_PATHS, IngestServer

from forwarder import handler
from forwarder.config import ENV_VARS

# --- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def put_log(s3: Any) -> Callable[..., Stored]:
    """Store a gzip ALB log object: ``put_log(key, lines=None, count=50, members=1, body=None)``."""

    def put(
        key: str,
        lines: list[str] | None = None,
        *,
        count: int = 50,
        members: int = 1,
        body: bytes | None = None,
        seed: int = 1,
    ) -> Stored:
        lines = lines if lines is not None else make_alb_lines(count, seed=seed)
        data = body if body is not None else gzip_lines(lines, members=members)
        response = s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        return Stored(BUCKET, key, response["ETag"].strip('"'), len(data), tuple(lines))

    return put


@pytest.fixture
def ingest() -> Iterator[IngestServer]:
    with IngestServer() as server:
        yield server


@pytest.fixture
def sleeps() -> Iterator[list[float]]:
    """Retry waits the sender asked for; nothing actually sleeps.

    The handler also switches the root logger to JSON at its configured level, as it does in Lambda;
    that is undone afterwards so other tests see logging as they left it.
    """
    root = logging.getLogger()
    level = root.level
    formatters = {h: h.formatter for h in root.handlers}
    recorded: list[float] = []
    handler.reset(sleep=recorded.append)
    yield recorded
    handler.reset()
    root.setLevel(level)
    for log_handler, formatter in formatters.items():
        log_handler.setFormatter(formatter)


@pytest.fixture
def forwarder_env(monkeypatch: pytest.MonkeyPatch, ingest: IngestServer) -> Callable[..., None]:
    """Point the forwarder at the ingest server; call it with more variables to override."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)

    def configure(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    configure(
        HTTP_ENDPOINT=ingest.url,
        HTTP_ALLOW_INSECURE="true",
        HTTP_TIMEOUT_SECONDS="2",
        HTTP_MAX_RETRIES="3",
    )
    return configure


@pytest.fixture
def intake_server(forwarder_env: Callable[..., None]) -> Iterator[Callable[..., IngestServer]]:
    """Start a receiver of an output format and point the forwarder at it (HTTP_ENDPOINT at the path the
    forwarder requires for that format, OUTPUT_FORMAT, and the variables in ``env``):
    ``intake_server("loki", env={"BATCH_MAX_RECORDS": "20"}, loki_max_line=100)``.

    Other keyword arguments go to the IngestServer. Servers are closed after the test; one can also be
    used as a context manager to close it earlier.
    """
    with contextlib.ExitStack() as running:

        def start(
            output_format: str, *, env: Mapping[str, str] | None = None, **options: Any
        ) -> IngestServer:
            server = IngestServer(intake=output_format, path=INTAKE_PATHS[output_format], **options)
            running.enter_context(server)
            forwarder_env(HTTP_ENDPOINT=server.url, OUTPUT_FORMAT=output_format, **(env or {}))
            return server

        yield start


@pytest.fixture
def invoke(aws: None, forwarder_env: Callable[..., None], sleeps: list[float]) -> Callable[..., Any]:
    """Call the Lambda handler as Lambda would: ``invoke(event, remaining_ms=...)``."""

    def run(event: dict[str, Any], *, remaining_ms: int = 300_000) -> Any:
        return handler.handler(event, FakeContext(remaining_ms=remaining_ms))

    return run
