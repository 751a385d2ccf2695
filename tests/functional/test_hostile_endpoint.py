"""A hostile ingest endpoint and unsendable secrets, through the Lambda handler as AWS invokes it.

The endpoint drips its answer, echoes the credential (whole or in part) in 401/403 bodies, quotes the
Authorization header back, or resets connections; the secret may hold characters no HTTP header can carry.
Each case checks the summary line, how many of the file's lines the receiver got, and that no run of 6
characters of the credential, in any form it is sent, appears in anything the forwarder produced: its log
lines as its own JSON formatter writes them, the exception the handler raises (what Lambda records and a
dead-letter record carries), the SQS answer and the metric lines.
"""

from __future__ import annotations

import json
import ssl
from typing import Any

import pytest
from aws_events import (
    LateStartContext,
    ShrinkingContext,
)
from hostile import (
    LINES,
    TOKEN,
    assert_nothing_leaked,
    basic_forms,
    basic_secret,
    bearer_forms,
    bearer_secret,
)
from ingest_server import Drip, IngestServer, Reflect, Reply, Reset

pytest_plugins = ["conftest_forwarder", "hostile"]

# --- the credential echoed in a 401/403 body -------------------------------------------------------------

ECHOES = {
    "whole": f'{{"error":"invalid token {TOKEN}"}}',
    "first-12": f'{{"error":"token {TOKEN[:12]}... is not valid"}}',
    "middle-of-text": f"denied:key=x{TOKEN[5:15]}y;retry later",
    "last-8-json": f'{{"detail":{{"hint":"ends with {TOKEN[-8:]}"}}}}',
}


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("echo", ECHOES, ids=list(ECHOES))
def test_rejection_body_echoing_the_credential(
    hostile: Any, forwarder_env: Any, ingest: IngestServer, status: int, echo: str
) -> None:
    bearer_secret(forwarder_env)
    ingest.set_default(Reply(status, body=ECHOES[echo].encode()))
    outcome = hostile()
    assert type(outcome.error).__name__ == "PermanentDeliveryError"
    assert f"answered HTTP {status}" in str(outcome.error)
    assert "[REDACTED]" in str(outcome.error)
    assert (outcome.summary["outcome"], outcome.summary["error_type"]) == ("failed", "PermanentDeliveryError")
    assert len(ingest.requests) == 2  # fetched again once (rotation), refused again
    assert (len(ingest.records()), outcome.lines_in_files) == (0, LINES)
    assert_nothing_leaked(outcome, *bearer_forms())


def test_rejection_echo_through_sqs(hostile: Any, forwarder_env: Any, ingest: IngestServer) -> None:
    bearer_secret(forwarder_env)
    ingest.set_default(Reply(401, body=ECHOES["first-12"].encode()))
    outcome = hostile(trigger="sqs", files=2)
    failed = [{"itemIdentifier": record["messageId"]} for record in outcome.event["Records"]]
    assert outcome.answer == {"batchItemFailures": failed}
    assert [s["error_type"] for s in outcome.summaries] == ["PermanentDeliveryError"] * 2
    assert (len(ingest.records()), outcome.lines_in_files) == (0, 2 * LINES)
    assert_nothing_leaked(outcome, *bearer_forms())


# --- the Authorization header quoted back ----------------------------------------------------------------


@pytest.mark.parametrize("auth", ["bearer", "basic"])
@pytest.mark.parametrize(
    ("where", "error_type", "requests"),
    [
        ("body", "PermanentDeliveryError", 1),
        ("header_line", "PermanentDeliveryError", 1),
        # Not HTTP at all: a transport error, retried once (HTTP_MAX_RETRIES=1).
        ("status_line", "TransientDeliveryError", 2),
    ],
)
def test_authorization_header_reflected(  # noqa: PLR0917 -- pytest fixtures and parameters
    hostile: Any,
    forwarder_env: Any,
    ingest: IngestServer,
    auth: str,
    where: str,
    error_type: str,
    requests: int,
) -> None:
    (bearer_secret if auth == "bearer" else basic_secret)(forwarder_env)
    ingest.set_default(Reflect(400, where=where))
    outcome = hostile()
    assert type(outcome.error).__name__ == error_type
    assert (outcome.summary["outcome"], outcome.summary["error_type"]) == ("failed", error_type)
    assert len(ingest.requests) == requests
    assert (len(ingest.records()), outcome.lines_in_files) == (0, LINES)
    assert_nothing_leaked(outcome, *(bearer_forms() if auth == "bearer" else basic_forms()))


# --- connection resets -----------------------------------------------------------------------------------


def test_resets_then_success_delivers_every_line(
    hostile: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    bearer_secret(forwarder_env)
    forwarder_env(HTTP_MAX_RETRIES="3")
    ingest.script(Reset(), Reset())
    outcome = hostile()
    assert outcome.error is None
    assert (outcome.summary["outcome"], outcome.summary["retries"]) == ("ok", 2)
    assert [r.status for r in ingest.requests] == [0, 0, 200]
    assert (len(ingest.records()), outcome.lines_in_files) == (LINES, LINES)
    assert_nothing_leaked(outcome, *bearer_forms())


def test_endpoint_that_always_resets(hostile: Any, forwarder_env: Any, ingest: IngestServer) -> None:
    bearer_secret(forwarder_env)
    ingest.set_default(Reset())
    outcome = hostile()
    assert type(outcome.error).__name__ == "TransientDeliveryError"
    assert "connection" in str(outcome.error).lower()
    assert "gave up after 1 retries" in str(outcome.error)
    assert (outcome.summary["outcome"], outcome.summary["error_type"]) == ("failed", "TransientDeliveryError")
    assert len(ingest.requests) == 2
    assert (len(ingest.records()), outcome.lines_in_files) == (0, LINES)
    emf = json.loads(outcome.metrics[-1])
    assert (emf["ObjectsFailed"], emf["DeliveryFailures"], emf["DeliveryRetries"]) == (1, 1, 1)
    assert_nothing_leaked(outcome, *bearer_forms())


# --- an endpoint that drips its answer -------------------------------------------------------------------

# 0.05 s a byte: each read returns well within any per-read timeout, but a whole answer takes over 10 s.
PARTS = ["status", "headers", "body"]
SLOW_BODY = b'{"status":"ok","padding":"' + b"." * 200 + b'"}'


@pytest.mark.parametrize("part", PARTS)
def test_drip_with_time_left_fails_after_the_retries_naming_the_total_timeout(
    hostile: Any, forwarder_env: Any, ingest: IngestServer, part: str
) -> None:
    bearer_secret(forwarder_env)
    forwarder_env(HTTP_TIMEOUT_SECONDS="1")
    ingest.set_default(Drip(Reply(200, body=SLOW_BODY), part=part))
    outcome = hostile()
    message = str(outcome.error)
    assert type(outcome.error).__name__ == "TransientDeliveryError"
    assert "1s" in message and "HTTP_TIMEOUT_SECONDS" in message
    assert "gave up after 1 retries" in message
    assert outcome.seconds < 5  # two attempts of at most 1 s each; a whole dripped answer takes over 10 s
    assert (outcome.summary["outcome"], outcome.summary["error_type"]) == ("failed", "TransientDeliveryError")
    assert len(ingest.requests) == 2
    assert (len(ingest.records()), outcome.lines_in_files) == (0, LINES)
    assert json.loads(outcome.metrics[-1])["DeliveryFailures"] == 1
    assert_nothing_leaked(outcome, *bearer_forms())


@pytest.mark.parametrize("part", PARTS)
def test_drip_near_the_deadline_ends_in_deadline_error(
    hostile: Any, forwarder_env: Any, ingest: IngestServer, part: str
) -> None:
    bearer_secret(forwarder_env)
    forwarder_env(HTTP_TIMEOUT_SECONDS="0.5", HTTP_MAX_RETRIES="5")
    ingest.set_default(Drip(Reply(200, body=SLOW_BODY), part=part))
    # 5.8 s left at the check before sending: one 0.5 s attempt fits before the 5 s margin, a second not.
    outcome = hostile(context=LateStartContext(remaining_ms=5_800))
    assert type(outcome.error).__name__ == "DeadlineError"
    assert outcome.seconds < 3  # one attempt of 0.5 s
    assert (outcome.summary["outcome"], outcome.summary["error_type"]) == ("failed", "DeadlineError")
    assert len(ingest.requests) == 1
    assert (len(ingest.records()), outcome.lines_in_files) == (0, LINES)
    assert json.loads(outcome.metrics[-1])["ObjectsFailed"] == 1
    assert_nothing_leaked(outcome, *bearer_forms())


def test_attempt_is_cut_at_the_deadline_not_at_the_timeout(
    hostile: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    bearer_secret(forwarder_env)
    forwarder_env(HTTP_TIMEOUT_SECONDS="20")
    ingest.set_default(Drip(Reply(200, body=SLOW_BODY), part="body"))
    # Time enough at the check before sending; then 5.6 s: the attempt may take 0.6 s, not 20.
    outcome = hostile(trigger="sqs", files=2, context=ShrinkingContext([300_000, 5_600]))
    assert outcome.seconds < 3  # one attempt of 0.6 s, where the timeout alone would allow 20
    failed = [{"itemIdentifier": record["messageId"]} for record in outcome.event["Records"]]
    assert outcome.answer == {"batchItemFailures": failed}  # the second file was not even tried
    assert (outcome.summary["outcome"], outcome.summary["error_type"]) == ("failed", "DeadlineError")
    assert len(ingest.requests) == 1
    assert (len(ingest.records()), outcome.lines_in_files) == (0, 2 * LINES)
    assert_nothing_leaked(outcome, *bearer_forms())


def test_drip_over_tls_is_cut_too(
    hostile: Any, forwarder_env: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # OpenSSL reads it: the test CA is trusted
    bearer_secret(forwarder_env)
    with IngestServer(ssl_context=server_context, default=Drip(Reply(200, body=SLOW_BODY))) as tls_server:
        forwarder_env(HTTP_ENDPOINT=tls_server.url, HTTP_ALLOW_INSECURE="false", HTTP_TIMEOUT_SECONDS="0.3")
        outcome = hostile()
        assert type(outcome.error).__name__ == "TransientDeliveryError"
        assert "no complete answer within 0.3s" in str(outcome.error)
        assert outcome.seconds < 3
        assert (len(tls_server.requests), len(tls_server.records())) == (2, 0)
    assert_nothing_leaked(outcome, *bearer_forms())


def test_pool_is_healthy_after_an_aborted_attempt(
    hostile: Any, forwarder_env: Any, ingest: IngestServer
) -> None:
    bearer_secret(forwarder_env)
    # 1 s: room for the healthy answers on a loaded machine; the dripped one would take over 10 s.
    forwarder_env(HTTP_TIMEOUT_SECONDS="1", HTTP_MAX_RETRIES="2")
    ingest.script(Drip(Reply(200, body=SLOW_BODY), part="body"))
    first = hostile()
    second = hostile()
    assert (first.error, second.error) == (None, None)
    assert [first.summary["retries"], second.summary["retries"]] == [1, 0]
    assert [r.status for r in ingest.requests] == [0, 200, 200]
    assert len(ingest.records()) == 2 * LINES


# --- secrets no HTTP header can carry --------------------------------------------------------------------

BAD_SECRETS = {
    "newline": (f"{TOKEN[:10]}\n{TOKEN[10:]}", "contains a newline at position 11"),
    "carriage-return": (f"{TOKEN[:7]}\r{TOKEN[7:]}", "contains a carriage return at position 8"),
    "euro-sign": (
        f"{TOKEN[:9]}\u20ac{TOKEN[9:]}",
        "contains a character that cannot be sent in an HTTP header (non-Latin-1/control) at position 10",
    ),
}


@pytest.mark.parametrize("trigger", ["sns", "sqs"])
@pytest.mark.parametrize("bad", BAD_SECRETS, ids=list(BAD_SECRETS))
def test_unsendable_secret_is_refused_when_fetched(
    hostile: Any, forwarder_env: Any, ingest: IngestServer, bad: str, trigger: str
) -> None:
    value, problem = BAD_SECRETS[bad]
    arn = bearer_secret(forwarder_env, value)
    outcome = hostile(trigger=trigger)
    summary = outcome.summary
    assert (summary["outcome"], summary["error_type"]) == ("failed", "CredentialError")
    assert f"secret {arn}" in summary["error"]
    assert problem in summary["error"]
    if trigger == "sns":
        assert type(outcome.error).__name__ == "CredentialError"
        assert str(outcome.error) == summary["error"]
    else:
        assert outcome.answer == {
            "batchItemFailures": [{"itemIdentifier": outcome.event["Records"][0]["messageId"]}]
        }
    assert ingest.requests == []
    assert outcome.lines_in_files == LINES
    assert_nothing_leaked(outcome, value, *value.splitlines())
