"""Retry, backoff, Retry-After and batching rules of the sender, without a network."""

from __future__ import annotations

import gzip
import itertools
import json
import math
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from forwarder import sender as sender_module
from forwarder.auth import CachedCredential, PlainCredential
from forwarder.config import DEFAULT_MAX_RETRY_WAIT_SECONDS, Config
from forwarder.destinations import is_retryable_status
from forwarder.destinations.envelope import JsonEnvelope
from forwarder.sender import (
    AttemptTimeoutError,
    DeadlineError,
    HttpResponse,
    PermanentDeliveryError,
    Sender,
    TransientDeliveryError,
    TransportError,
    backoff_delay,
    compressor_name,
    iter_batches,
    parse_retry_after,
    plan_retry,
)

NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC).timestamp()
JSON = JsonEnvelope.framing
ENVELOPE_BYTES = len(JSON.prefix) + len(JSON.suffix)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_retryable_statuses(status: int) -> None:
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [200, 301, 400, 401, 403, 404, 409, 413, 422, 600])
def test_not_retryable_statuses(status: int) -> None:
    assert not is_retryable_status(status)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        (format_datetime(datetime(2025, 3, 14, 9, 30, 12, tzinfo=UTC), usegmt=True), 12.0),
        ("Fri, 14 Mar 2025 09:29:00 GMT", 0.0),  # in the past: retry now
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


def test_backoff_is_full_jitter_and_capped() -> None:
    assert backoff_delay(0, rng=lambda: 0.999) == pytest.approx(0.4995)
    assert backoff_delay(3, rng=lambda: 0.5) == pytest.approx(2.0)  # 0.5 * 2**3 / 2
    assert backoff_delay(30, rng=lambda: 1.0) == 20.0
    assert backoff_delay(4, rng=lambda: 0.0) == 0.0


def test_plan_retry_uses_backoff_then_stops_at_max_retries() -> None:
    decision = plan_retry(
        retries_done=2, max_retries=3, retry_after=None, seconds_left=100, attempt_seconds=5, rng=lambda: 0.5
    )
    assert decision.retry and decision.delay == pytest.approx(1.0)
    decision = plan_retry(
        retries_done=3, max_retries=3, retry_after=None, seconds_left=100, attempt_seconds=5
    )
    assert not decision.retry
    assert "HTTP_MAX_RETRIES=3" in decision.reason


def test_plan_retry_honours_retry_after_exactly() -> None:
    decision = plan_retry(retries_done=0, max_retries=3, retry_after=9, seconds_left=100, attempt_seconds=5)
    assert decision.delay == 9


def test_plan_retry_caps_a_long_retry_after_and_says_so() -> None:
    """Without an invocation deadline (replay), a Retry-After of 100000 s must not be slept as is."""
    decision = plan_retry(
        retries_done=0,
        max_retries=3,
        retry_after=100000,
        seconds_left=math.inf,
        attempt_seconds=5,
        max_wait=120,
    )
    assert decision.delay == 120
    assert "Retry-After 100000s capped at 120s (HTTP_MAX_RETRY_WAIT_SECONDS)" in decision.reason
    assert (
        plan_retry(
            retries_done=0,
            max_retries=3,
            retry_after=9,
            seconds_left=math.inf,
            attempt_seconds=5,
            max_wait=120,
        ).reason
        == "Retry-After 9s"
    )


def test_the_retry_wait_cap_has_a_documented_default() -> None:
    assert (
        Config(endpoint="https://x.example").max_retry_wait_seconds == DEFAULT_MAX_RETRY_WAIT_SECONDS == 120
    )
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "| `HTTP_MAX_RETRY_WAIT_SECONDS` | `120` |" in readme


def test_plan_retry_never_sleeps_past_the_deadline() -> None:
    # Waiting 9 s and then a 5 s attempt would not fit in 12 s.
    decision = plan_retry(retries_done=0, max_retries=3, retry_after=9, seconds_left=12, attempt_seconds=5)
    assert not decision.retry
    assert "do not fit" in decision.reason
    decision = plan_retry(
        retries_done=0, max_retries=3, retry_after=None, seconds_left=4, attempt_seconds=5, rng=lambda: 0
    )
    assert not decision.retry


def encoded(count: int, size: int = 100) -> list[bytes]:
    return [json.dumps({"n": i, "pad": "x" * (size - 20)}).encode() for i in range(count)]


def test_batches_respect_record_limit() -> None:
    batches = list(iter_batches(encoded(10), framing=JSON, max_records=4, max_bytes=10**9))
    assert [b.records for b in batches] == [4, 4, 2]


def test_batches_respect_byte_limit_exactly() -> None:
    parts = encoded(50)
    limit = 1000
    batches = list(iter_batches(parts, framing=JSON, max_records=10**6, max_bytes=limit))
    assert sum(b.records for b in batches) == 50
    for batch in batches:
        body = batch.body()
        assert len(body) == batch.raw_bytes <= limit
        assert json.loads(body)["logs"]
    # Greedy: adding the next record to any batch would have crossed the limit.
    for batch, following in itertools.pairwise(batches):
        assert batch.raw_bytes + 1 + len(following.first_record) > limit


def test_oversized_record_travels_alone() -> None:
    big = b'{"raw":"' + b"y" * 5000 + b'"}'
    batches = list(iter_batches([b"{}", big, b"{}"], framing=JSON, max_records=100, max_bytes=1000))
    assert [b.records for b in batches] == [1, 1, 1]
    assert batches[1].raw_bytes == len(big) + ENVELOPE_BYTES


@pytest.mark.parametrize("isal", [True, False], ids=["isal-if-installed", "zlib"])
def test_compressed_body_is_the_json_body(isal: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not isal:
        monkeypatch.setattr(sender_module, "_isal_zlib", None)
    batch = next(iter_batches(encoded(1000), framing=JSON, max_records=10**6, max_bytes=10**9))
    for level in range(1, 10):
        assert gzip.decompress(batch.compress(level)) == batch.body()
        assert compressor_name(level) == ("zlib" if level > 2 or sender_module._isal_zlib is None else "isal")
    assert json.loads(batch.body())["logs"][999]["n"] == 999


# --- Sender with a scripted transport --------------------------------------------------------------------


class ScriptedTransport:
    def __init__(self, *answers: HttpResponse | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, str]] = []
        self.timeouts: list[float] = []

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> HttpResponse:
        self.calls.append(dict(headers))
        self.timeouts.append(timeout)
        answer = self.answers.pop(0) if self.answers else HttpResponse(200, None, b"")
        if isinstance(answer, Exception):
            raise answer
        return answer


class CountingSource:
    by_reference = True
    description = "secret arn:aws:secretsmanager:us-east-1:123456789012:secret:ingest"

    def __init__(self, *values: str) -> None:
        self.values = list(values)
        self.fetches = 0

    def fetch(self) -> str:
        self.fetches += 1
        return self.values[min(self.fetches, len(self.values)) - 1]


BODY = next(iter_batches([b'{"n":1}'], framing=JSON, max_records=1, max_bytes=100))


def make_sender(
    transport: ScriptedTransport, *, config: Config | None = None, credential: CachedCredential | None = None
) -> tuple[Sender, list[float]]:
    sleeps: list[float] = []
    sender = Sender(
        config or Config(endpoint="https://logs.example.com/in?key=q", max_retries=3, timeout_seconds=2),
        credential,
        transport=transport,
        sleep=sleeps.append,
        wall_clock=lambda: NOW,
        rng=lambda: 0.5,
    )
    return sender, sleeps


def test_sender_retries_then_succeeds() -> None:
    transport = ScriptedTransport(
        TransportError("could not connect"),
        HttpResponse(503, None, b""),
        HttpResponse(429, "3", b""),
    )
    sender, sleeps = make_sender(transport)
    result = sender.send(BODY)
    assert (result.status, result.attempts, result.retries) == (200, 4, 3)
    assert sleeps == [0.25, 0.5, 3.0]


def test_sender_gives_up_after_max_retries() -> None:
    transport = ScriptedTransport(*[HttpResponse(500, None, b"oops")] * 10)
    sender, _ = make_sender(transport)
    with pytest.raises(TransientDeliveryError, match="gave up after 3 retries") as caught:
        sender.send(BODY)
    assert len(transport.calls) == 4
    assert caught.value.retries == 3
    assert "https://logs.example.com/in" in str(caught.value)
    assert "key=q" not in str(caught.value)


def test_sender_stops_when_time_runs_out() -> None:
    transport = ScriptedTransport(*[HttpResponse(503, "30", b"")] * 10)
    sender, sleeps = make_sender(transport)
    with pytest.raises(DeadlineError, match="do not fit") as caught:
        sender.send(BODY, seconds_left=lambda: 36.0)  # 36 - 5 margin < 30 + 2
    assert "HTTP 503 Service Unavailable" in str(caught.value)
    assert sleeps == []
    assert len(transport.calls) == 1


def test_permanent_error_is_not_retried_and_is_sanitised() -> None:
    token = "tok-ABCDEF-123456"
    body = ("bad token " + token + "\n\x1b[31m" + "z" * 500).encode()
    transport = ScriptedTransport(HttpResponse(400, None, body))
    config = Config(
        endpoint="https://user:pw@logs.example.com/in?key=q", auth_type="bearer", auth_credentials=token
    )
    credential = CachedCredential(CountingSource(token), 300)
    sender, sleeps = make_sender(transport, config=config, credential=credential)
    with pytest.raises(PermanentDeliveryError) as caught:
        sender.send(BODY)
    message = str(caught.value)
    assert "https://logs.example.com/in answered HTTP 400 Bad Request" in message
    assert token not in message
    assert "pw" not in message.replace("payload", "")
    assert "\x1b" not in message and "\n" not in message
    assert "[REDACTED]" in message
    assert len(message) < 600
    assert sleeps == []


def test_401_refreshes_the_credential_once() -> None:
    source = CountingSource("old-token", "new-token")
    credential = CachedCredential(source, 300)
    transport = ScriptedTransport(HttpResponse(401, None, b""), HttpResponse(202, None, b""))
    config = Config(endpoint="https://logs.example.com/in", auth_type="bearer", auth_secret_arn="arn:x")
    sender, _ = make_sender(transport, config=config, credential=credential)
    result = sender.send(BODY)
    assert result.status == 202
    assert [c["Authorization"] for c in transport.calls] == ["Bearer old-token", "Bearer new-token"]
    assert source.fetches == 2
    # The next batch uses the cached new value.
    sender.send(BODY)
    assert transport.calls[-1]["Authorization"] == "Bearer new-token"
    assert source.fetches == 2


def test_rejected_twice_fails_after_one_refresh() -> None:
    source = CountingSource("same")
    transport = ScriptedTransport(HttpResponse(403, None, b"forbidden"), HttpResponse(401, None, b"no"))
    config = Config(endpoint="https://logs.example.com/in", auth_type="bearer", auth_secret_arn="arn:x")
    sender, sleeps = make_sender(transport, config=config, credential=CachedCredential(source, 300))
    with pytest.raises(PermanentDeliveryError, match=r"HTTP 401 Unauthorized.*check the credential"):
        sender.send(BODY)
    assert len(transport.calls) == 2
    assert source.fetches == 2
    assert sleeps == []


def test_plain_credential_is_not_refreshed() -> None:
    transport = ScriptedTransport(HttpResponse(401, None, b""))
    config = Config(endpoint="https://logs.example.com/in", auth_type="bearer", auth_credentials="t")
    credential = CachedCredential(PlainCredential("t", "bearer"), 300)
    sender, _ = make_sender(transport, config=config, credential=credential)
    with pytest.raises(PermanentDeliveryError, match="HTTP 401"):
        sender.send(BODY)
    assert len(transport.calls) == 1


def test_credential_cache_expires() -> None:
    now = [0.0]
    source = CountingSource("v1", "v2")
    credential = CachedCredential(source, 300, clock=lambda: now[0])
    assert credential.get() == "v1"
    now[0] = 299
    assert credential.get() == "v1"
    now[0] = 300
    assert credential.get() == "v2"
    assert source.fetches == 2


def test_each_attempt_gets_the_timeout_or_less_when_the_deadline_is_nearer() -> None:
    transport = ScriptedTransport(AttemptTimeoutError("timed out waiting for the response"))
    sender, _ = make_sender(transport)
    assert sender.send(BODY, seconds_left=lambda: 300.0).attempts == 2
    assert transport.timeouts == [2, 2]

    transport = ScriptedTransport(*[AttemptTimeoutError("timed out waiting for the response")] * 3)
    sender, sleeps = make_sender(transport)
    with pytest.raises(DeadlineError) as caught:
        sender.send(BODY, seconds_left=lambda: 5.6)  # 0.6 s before the 5 s margin
    assert transport.timeouts == [pytest.approx(0.6)]
    assert "cut from HTTP_TIMEOUT_SECONDS=2 to the time left before the deadline" in str(caught.value)
    assert "raise the function timeout" in str(caught.value)
    assert sleeps == []


def test_timed_out_attempts_name_the_total_timeout() -> None:
    transport = ScriptedTransport(*[AttemptTimeoutError("timed out waiting for the response")] * 4)
    sender, _ = make_sender(transport)
    with pytest.raises(TransientDeliveryError) as caught:
        sender.send(BODY)
    assert type(caught.value) is TransientDeliveryError
    assert "HTTP_TIMEOUT_SECONDS bounds a whole attempt" in str(caught.value)


def test_transport_error_text_is_masked_for_the_credential() -> None:
    token = "tok-ABCDEF-123456"
    transport = ScriptedTransport(
        *[TransportError(f"connection broken: BadStatusLine('HTTP/1.1 Bearer {token[:11]}')")] * 10
    )
    config = Config(endpoint="https://logs.example.com/in", auth_type="bearer", auth_credentials=token)
    credential = CachedCredential(PlainCredential(token, "bearer"), 300)
    sender, _ = make_sender(transport, config=config, credential=credential)
    with pytest.raises(TransientDeliveryError) as caught:
        sender.send(BODY)
    assert "BadStatusLine('HTTP/1.1 Bearer [REDACTED]')" in str(caught.value)
    assert token[:6] not in str(caught.value)
