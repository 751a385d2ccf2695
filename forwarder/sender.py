"""Batches of encoded records -> gzip -> HTTPS POST, with bounded retries acting on the destination's verdict.

Retry rules: connection errors, timeouts, 408, 429 and 5xx are retried with exponential backoff and full
jitter, or after the server's ``Retry-After`` (capped at HTTP_MAX_RETRY_WAIT_SECONDS); never more than
``max_retries`` times and never when the invocation could not finish another attempt (then DeadlineError).
401/403 trigger one credential refresh and one more attempt (the secret may have been rotated). Anything
else (other 4xx, 3xx) is permanent: redirects are not followed, so the credential is never sent to another
host. A 2xx is read by the destination (forwarder.destinations): items it asks to retry are cut from the
batch and sent again alone under the same rules; items it rejected are counted and returned to the caller.

Each attempt has a wall-clock budget, from connecting to the last byte of the answer: HTTP_TIMEOUT_SECONDS,
or less when the invocation's deadline (minus the margin) comes first. Whatever the endpoint sends back
is masked for every run of the credential before it goes into a message.
"""

from __future__ import annotations

import contextlib
import email.utils
import heapq
import importlib
import logging
import math
import random
import re
import socket
import threading
import time
import zlib
from array import array
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import boto3.session
import urllib3
import urllib3.connection

import forwarder
from forwarder import redaction
from forwarder.auth import CachedCredential, RequestSigner, auth_headers, secret_forms, signer_from_config
from forwarder.config import (
    AUTH_SIGV4,
    DEFAULT_MAX_RETRY_WAIT_SECONDS,
    HTTP_MAX_RETRY_WAIT_SECONDS,
    Config,
    describe_endpoint,
)
from forwarder.destinations import (
    Confirmation,
    Destination,
    Framing,
    Rejection,
    Verdict,
    destination_for,
)
from forwarder.destinations import status_phrase as _phrase
from forwarder.redaction import Redactor

logger = logging.getLogger(__name__)

USER_AGENT = f"alb-log-onboarding-forwarder/{forwarder.__version__}"

# Seconds kept free at the end of an invocation for logging the summary and failing cleanly.
DEFAULT_DEADLINE_MARGIN = 5.0
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 20.0
SNIPPET_CHARS = 200
_MAX_ERROR_BODY = 4096
# A 2xx body is read too: Elasticsearch's _bulk answers item errors with a 200. Its answer to a 4 MiB
# request is at most a few MB (one status, and an error for failed items, per document).
_MAX_ACCEPTED_BODY = 16 * 1024 * 1024


class DeliveryError(Exception):
    """A batch was not accepted by the endpoint; ``retries`` says how many retries were spent on it."""

    def __init__(self, message: str, *, retries: int = 0) -> None:
        super().__init__(message)
        self.retries = retries


class PermanentDeliveryError(DeliveryError):
    """The endpoint refused the batch in a way retrying will not fix (401/403 after a refresh, other 4xx)."""


class TransientDeliveryError(DeliveryError):
    """Retryable failures did not clear up within the retry budget or the invocation's time."""


class DeadlineError(TransientDeliveryError):
    """The invocation's time ran out before the batch was delivered (before sending it, or before another
    attempt could finish); the platform's retry resends the object with the same event_ids."""


# --- retry policy (pure) ---------------------------------------------------------------------------------


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None when absent/invalid."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        return None
    return max(0.0, when.timestamp() - now)


def backoff_delay(
    retry_number: int,
    *,
    base: float = BACKOFF_BASE_SECONDS,
    cap: float = BACKOFF_CAP_SECONDS,
    rng: Callable[[], float] = random.random,
) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**retry_number)) (retry_number starts at 0)."""
    return rng() * min(cap, base * (2 ** min(retry_number, 30)))


@dataclass(frozen=True, slots=True)
class RetryDecision:
    delay: float | None
    reason: str
    out_of_time: bool = False  # no retry because the invocation has no time for one (not the retry count)

    @property
    def retry(self) -> bool:
        return self.delay is not None


def plan_retry(
    *,
    retries_done: int,
    max_retries: int,
    retry_after: float | None,
    seconds_left: float,
    attempt_seconds: float,
    max_wait: float = DEFAULT_MAX_RETRY_WAIT_SECONDS,
    rng: Callable[[], float] = random.random,
) -> RetryDecision:
    """Whether to retry and after how long.

    ``seconds_left`` is what remains of the invocation minus the safety margin; a retry happens only if
    the wait plus a full attempt (``attempt_seconds``, the HTTP timeout) fits in it. No wait is longer
    than ``max_wait``, whatever Retry-After asked for.
    """
    if retries_done >= max_retries:
        return RetryDecision(None, f"gave up after {retries_done} retries (HTTP_MAX_RETRIES={max_retries})")
    if retry_after is not None and retry_after > max_wait:
        delay = max_wait
        source = f"Retry-After {retry_after:g}s capped at {max_wait:g}s ({HTTP_MAX_RETRY_WAIT_SECONDS})"
    elif retry_after is not None:
        delay = retry_after
        source = f"Retry-After {retry_after:g}s"
    else:
        delay = backoff_delay(retries_done, rng=rng)
        source = f"backoff {delay:.2f}s"
    if delay + attempt_seconds > seconds_left:
        return RetryDecision(
            None,
            f"stopped after {retries_done} retries: waiting ({source}) and another attempt (up to "
            f"{attempt_seconds:g}s) do not fit in the {max(seconds_left, 0):.1f}s the invocation has left",
            out_of_time=True,
        )
    return RetryDecision(delay, source)


# --- compression -----------------------------------------------------------------------------------------

# gzip is the largest cost after parsing. Measured on a 4 MiB batch of ALB access records: zlib level 1
# ~200 MiB/s (ratio 7.6), level 3 ~185 MiB/s (8.4), level 6 ~75 MiB/s (10.7); ISA-L's igzip (the `isal`
# package) level 1 ~760 MiB/s (8.1). So levels 1-2 use ISA-L when it is installed (the forwarder zip ships
# it), and zlib otherwise or for levels 3-9. The output is standard gzip either way.
ISAL_MAX_LEVEL = 2
try:
    _isal_zlib: Any = importlib.import_module("isal.isal_zlib")
except ImportError:
    _isal_zlib = None


def compressor_name(level: int) -> str:
    """Which library compresses at this level: "isal" or "zlib"."""
    return "isal" if _isal_zlib is not None and level <= ISAL_MAX_LEVEL else "zlib"


def compressobj(level: int) -> Any:
    """A gzip compressor (wbits 31) at ``level``, from the fastest library available for it."""
    if compressor_name(level) == "isal":
        return _isal_zlib.compressobj(level, _isal_zlib.DEFLATED, 31)
    return zlib.compressobj(level, zlib.DEFLATED, 31)


# --- batching --------------------------------------------------------------------------------------------


class Batch:
    """Encoded records waiting to be sent, already laid out as the request body, with each one's offset.

    Records are copied into one growing buffer as they arrive instead of being kept as separate bytes
    objects: orjson over-allocates each result (several KB each, measured), so a list of 5000 of them
    would cost tens of MB; the buffer costs the body's size. The offsets let a body for some of the
    records (a retry of the items the intake asked for) be cut from the buffer instead of re-encoded.
    """

    __slots__ = ("_assembled", "_buffer", "_framing", "_origin", "_starts")

    def __init__(
        self, buffer: bytearray, framing: Framing, starts: array[int], origin: tuple[int, ...] | None = None
    ) -> None:
        self._buffer = buffer  # prefix + records joined with the separator (the suffix is implied)
        self._framing = framing
        self._starts = starts  # offset of each record in the buffer
        self._origin = origin  # position of each record in the batch this one was cut from
        self._assembled: bytes | bytearray | None = None  # the body framing.assemble wrote, once asked for

    @property
    def records(self) -> int:
        return len(self._starts)

    @property
    def raw_bytes(self) -> int:
        """Size of the uncompressed body."""
        assemble = self._framing.assemble
        if assemble is not None:
            return len(self._assembled_by(assemble))
        return len(self._buffer) + len(self._framing.suffix)

    @property
    def first_record(self) -> bytes:
        return bytes(self._item(0))

    def original_position(self, position: int) -> int:
        """Where a record of this batch was in the batch first built (the same, unless cut by ``subset``)."""
        return position if self._origin is None else self._origin[position]

    def body(self) -> bytes:
        """The uncompressed request body (tests, ``parse --output-format``; sending uses ``compress``)."""
        assemble = self._framing.assemble
        if assemble is not None:
            return bytes(self._assembled_by(assemble))
        return bytes(self._buffer) + self._framing.suffix

    def compress(self, level: int) -> bytes:
        """The gzip request body."""
        compressor = compressobj(level)
        assemble = self._framing.assemble
        if assemble is not None:
            return compressor.compress(self._assembled_by(assemble)) + compressor.flush()
        suffix = self._framing.suffix
        return compressor.compress(self._buffer) + compressor.compress(suffix) + compressor.flush()

    def _assembled_by(
        self, assemble: Callable[[bytearray, Sequence[int]], bytes | bytearray]
    ) -> bytes | bytearray:
        """The body ``assemble`` writes from the records, written once (each attempt compresses it)."""
        if self._assembled is None:
            self._assembled = assemble(self._buffer, self._starts)
        return self._assembled

    def subset(self, positions: Iterable[int]) -> Batch:
        """A batch of the records at ``positions`` (in order), cut from this one's buffer."""
        framing = self._framing
        buffer = bytearray(framing.prefix)
        starts: array[int] = array("Q")
        origin: list[int] = []
        for position in positions:
            if starts:
                buffer += framing.separator
            starts.append(len(buffer))
            buffer += self._item(position)
            origin.append(self.original_position(position))
        return Batch(buffer, framing, starts, tuple(origin))

    def _item(self, position: int) -> memoryview:
        start = self._starts[position]
        following = position + 1
        end = (
            self._starts[following] - len(self._framing.separator)
            if following < len(self._starts)
            else len(self._buffer)
        )
        return memoryview(self._buffer)[start:end]


def iter_batches(
    encoded: Iterable[bytes], *, framing: Framing, max_records: int, max_bytes: int
) -> Generator[Batch, None, None]:
    """Group encoded records so no body exceeds ``max_bytes`` (uncompressed) or ``max_records``.

    A single record larger than ``max_bytes`` goes alone in its own batch rather than being dropped.
    """
    prefix, separator = framing.prefix, framing.separator
    # Room for the suffix is kept so the limit applies to the whole body.
    limit = max_bytes - len(framing.suffix)
    buffer = bytearray(prefix)
    starts: array[int] = array("Q")
    for data in encoded:
        if starts:
            if len(starts) >= max_records or len(buffer) + len(separator) + len(data) > limit:
                yield Batch(buffer, framing, starts)
                buffer = bytearray(prefix)
                starts = array("Q")
            else:
                buffer += separator
        starts.append(len(buffer))
        buffer += data
    if starts:
        yield Batch(buffer, framing, starts)


# --- HTTP ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    retry_after: str | None
    body: bytes


class TransportError(Exception):
    """The request got no HTTP answer (connection refused or reset, TLS failure, timeout)."""


class AttemptTimeoutError(TransportError):
    """No complete answer arrived within the attempt's time budget."""


class Transport(Protocol):
    """One POST. ``timeout`` bounds the whole attempt, from connecting to the last byte of the answer:
    raise AttemptTimeoutError when it runs out, TransportError when no answer came."""

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> HttpResponse: ...


# --- per-attempt watchdog --------------------------------------------------------------------------------

# urllib3's connect and read timeouts apply to each socket operation, and the read timeout starts again
# with every byte received (its Timeout.total does not bound reading the answer either): an endpoint that
# drips its answer could hold one attempt open far past any limit. A timer that shuts the socket down
# makes the blocked read return at once, wherever the attempt is (TLS handshake, status line, headers,
# body).
_running = threading.local()


class _Watchdog:
    """Shuts down the socket of the attempt running on this thread once ``seconds`` have passed."""

    __slots__ = ("_connection", "_deadline", "_done", "_lock", "fired")

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._connection: Any = None
        self._done = False
        self.fired = False
        self._deadline = time.monotonic() + max(seconds, 0.0)

    def __enter__(self) -> _Watchdog:
        _running.watchdog = self
        _DEADLINES.add(self._deadline, self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._done = True
        _running.watchdog = None

    def watch(self, connection: Any) -> None:
        """The attempt uses ``connection`` now (a new one connecting, or a kept-alive one sending)."""
        with self._lock:
            self._connection = connection
            fired = self.fired
        if fired:
            _shut_down(connection)

    @property
    def done(self) -> bool:
        return self._done

    def fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            connection = self._connection
        if connection is not None:
            _shut_down(connection)


class _Deadlines:
    """One daemon thread for every attempt's watchdog: it fires each at its deadline, unless the attempt
    ended first. (A timer thread per attempt cost about 0.14 ms of CPU time per request.)"""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._queue: list[tuple[float, int, _Watchdog]] = []
        self._thread: threading.Thread | None = None
        self._added = 0

    def add(self, deadline: float, watchdog: _Watchdog) -> None:
        with self._condition:
            while self._queue and self._queue[0][2].done:  # ended attempts: dropped as they surface
                heapq.heappop(self._queue)
            self._added += 1
            heapq.heappush(self._queue, (deadline, self._added, watchdog))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="forwarder-watchdog", daemon=True)
                self._thread.start()
            elif self._queue[0][2] is watchdog:  # the earliest now: wake the thread to wait less
                self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while True:
                    if not self._queue:
                        self._condition.wait()
                        continue
                    deadline, _, watchdog = self._queue[0]
                    if watchdog.done:
                        heapq.heappop(self._queue)
                        continue
                    left = deadline - time.monotonic()
                    if left <= 0:
                        heapq.heappop(self._queue)
                        break
                    self._condition.wait(left)
            watchdog.fire()


_DEADLINES = _Deadlines()


def _shut_down(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        # The plain socket call, also for a TLS socket: SSLSocket.shutdown would unwrap TLS under the
        # reader's feet; this only makes the kernel end the blocked read. OSError: already closed.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _watch(connection: Any) -> None:
    watchdog: _Watchdog | None = getattr(_running, "watchdog", None)
    if watchdog is not None:
        watchdog.watch(connection)


if TYPE_CHECKING:
    _ConnectionBase = urllib3.connection.HTTPConnection
else:
    _ConnectionBase = object


class _WatchedConnection(_ConnectionBase):
    """Tells the running attempt's watchdog which connection to cut: before connecting (for TLS, the
    handshake comes before the request) and before each request (a kept-alive connection)."""

    def connect(self) -> None:
        _watch(self)
        super().connect()

    def putrequest(
        self, method: str, url: str, skip_host: bool = False, skip_accept_encoding: bool = False
    ) -> None:
        _watch(self)
        super().putrequest(method, url, skip_host=skip_host, skip_accept_encoding=skip_accept_encoding)


class _WatchedHTTPConnection(_WatchedConnection, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnection, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPConnectionPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_pool: urllib3.PoolManager | None = None
_pool_lock = threading.Lock()


def pool_manager() -> urllib3.PoolManager:
    """One PoolManager per process, created on first use and reused by warm invocations (keep-alive)."""
    global _pool  # noqa: PLW0603 -- a process-wide connection pool is the point
    with _pool_lock:
        if _pool is None:
            # TLS verification against the system trust store; no automatic retries or redirects.
            _pool = urllib3.PoolManager(num_pools=4, maxsize=2, cert_reqs="CERT_REQUIRED", retries=False)
            _pool.pool_classes_by_scheme = {
                "http": _WatchedHTTPConnectionPool,
                "https": _WatchedHTTPSConnectionPool,
            }
        return _pool


def reset_pool() -> None:
    """Drop the shared pool (tests; or after the trust store changed)."""
    global _pool  # noqa: PLW0603
    with _pool_lock:
        if _pool is not None:
            _pool.clear()
        _pool = None


class Urllib3Transport:
    """POST with urllib3 within a wall-clock budget per attempt; reads at most a few KB of an error body
    (and a bounded 2xx body, for the destination to read)."""

    def __init__(self, pool: Callable[[], urllib3.PoolManager] = pool_manager) -> None:
        self._pool = pool

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> HttpResponse:
        with _Watchdog(timeout) as watchdog:
            try:
                response = self._pool().urlopen(
                    "POST",
                    url,
                    body=body,
                    headers=headers,
                    timeout=urllib3.Timeout(connect=timeout, read=timeout),
                    retries=False,
                    redirect=False,
                    preload_content=False,
                )
            except Exception as exc:
                if watchdog.fired or _is_timeout(exc):
                    raise AttemptTimeoutError(_timeout_message(exc, timeout)) from exc
                if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
                    raise TransportError(_describe_transport_error(exc)) from exc
                raise
            try:
                data = response.read(_MAX_ERROR_BODY if response.status >= 300 else _MAX_ACCEPTED_BODY)
                response.drain_conn()
            except (urllib3.exceptions.HTTPError, OSError):
                data = b""
            finally:
                if watchdog.fired:
                    response.close()  # its socket is shut down: the pool reconnects instead of reusing it
                response.release_conn()
        if watchdog.fired:
            raise AttemptTimeoutError(_timeout_message(None, timeout))
        return HttpResponse(response.status, response.headers.get("Retry-After"), data)


def _is_timeout(exc: BaseException) -> bool:
    # urllib3's NewConnectionError (refused, unreachable) is a subclass of ConnectTimeoutError: no timeout.
    return isinstance(exc, urllib3.exceptions.TimeoutError) and not isinstance(
        exc, urllib3.exceptions.NewConnectionError
    )


def _timeout_message(exc: BaseException | None, seconds: float) -> str:
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return f"timed out connecting: no connection within {seconds:.3g}s"
    return f"timed out waiting for the response: no complete answer within {seconds:.3g}s"


def _describe_transport_error(exc: BaseException) -> str:
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"TLS error: {_reason(exc)}"
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return f"could not connect: {_reason(exc)}"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return f"connection broken: {_reason(exc)}"
    return f"{type(exc).__name__}: {_reason(exc)}"


def _reason(exc: BaseException) -> str:
    # urllib3 messages embed the pool object and sometimes the URL; keep only the last, useful part.
    # The sender masks the credential in it (the transport does not know the credential).
    text = str(exc)
    return _sanitize(text.rsplit(": ", 1)[-1] if ": " in text else text)


# --- sending ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendResult:
    """A batch delivered: every record accepted (``duplicates`` of them already there) but ``rejected``
    ones; ``rejections`` say why, with positions in the batch where the intake gave them."""

    status: int
    attempts: int
    retries: int
    bytes_sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: tuple[Rejection, ...] = ()


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_NO_SECRETS = Redactor()


def _sanitize(text: str, redact: Redactor = _NO_SECRETS) -> str:
    """Text an endpoint sent, fit for a message: control characters flattened (first, so a flattened
    character cannot join two pieces into a credential run), every credential run masked, length capped."""
    text = redact(_CONTROL.sub(" ", text).strip())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 3] + "..."


def _status_hint(status: int, accepts: str, auth_type: str) -> str:
    if status in (401, 403) and auth_type == AUTH_SIGV4:
        return (
            "check that the forwarder role may post to the domain or collection (OpenSearchResourceArn) and "
            "that OpenSearch maps it to a role that may write the index (fine-grained access control or the "
            "collection's data access policy), and AWS_SIGV4_SERVICE"
        )
    if status in (401, 403):
        return "check the credential (HTTP_AUTH_TYPE and the secret, parameter or value it names)"
    if status == 404:
        return "check the HTTP_ENDPOINT path"
    if status == 413:
        return "the endpoint refused the body size: lower BATCH_MAX_BYTES or BATCH_MAX_RECORDS"
    if 300 <= status < 400:
        return "redirects are not followed: set HTTP_ENDPOINT to the final URL"
    return f"the endpoint rejected the request; check that it accepts {accepts} (OUTPUT_FORMAT)"


class Sender:
    """Posts gzip bodies to the endpoint in the configured destination's format; one per forwarder process,
    reused across invocations."""

    def __init__(
        self,
        config: Config,
        credential: CachedCredential | None,
        *,
        transport: Transport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        deadline_margin: float = DEFAULT_DEADLINE_MARGIN,
        signer: RequestSigner | None = None,
    ) -> None:
        self._config = config
        self._credential = credential
        self._signer = signer or signer_from_config(config, session=boto3.session.Session)
        self._transport = transport or Urllib3Transport()
        self.destination: Destination = destination_for(config)
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._rng = rng
        self.deadline_margin = deadline_margin
        self.endpoint_name = describe_endpoint(config.endpoint)

    @property
    def config(self) -> Config:
        return self._config

    def prepare(self) -> None:
        """Fetch the credential (when one is configured) now, on this thread, before batches are sent on
        the delivery thread: the client that reads a secret is made from boto3's default session, which
        is not safe to use from two threads at once. Cached, as every fetch is."""
        if self._credential is not None:
            self._credential.get()

    def seconds_needed(self) -> float:
        """Time an attempt may take, plus the margin: the least that must remain before sending."""
        return self._config.timeout_seconds + self.deadline_margin

    def send(self, batch: Batch, *, seconds_left: Callable[[], float] = lambda: math.inf) -> SendResult:
        """POST one batch until every record is delivered or rejected; raise PermanentDeliveryError,
        TransientDeliveryError or DeadlineError (the invocation has no time for another attempt)."""
        config = self._config
        credential = self._credential.get() if self._credential else None
        headers, redact = self._headers(credential)
        attempts = retries = bytes_sent = duplicates = rejected_items = 0
        rejections: list[Rejection] = []
        refreshed = False
        pending = batch
        body = pending.compress(config.compression_level)
        while True:
            attempts += 1
            retry_after: float | None = None
            # No attempt may run past the deadline minus the margin, nor longer than the timeout.
            budget = min(config.timeout_seconds, seconds_left() - self.deadline_margin)
            try:
                if budget <= 0:
                    raise AttemptTimeoutError("no time left for an attempt")
                response = self._transport.post(
                    config.endpoint, body, self._sign(config.endpoint, body, headers), budget
                )
            except TransportError as exc:
                failure = redact(str(exc))
                if isinstance(exc, AttemptTimeoutError):
                    failure += self._timeout_context(budget)
            else:
                status = response.status
                cached = self._credential
                rejected = status in (401, 403)
                if rejected and cached is not None and cached.source.by_reference and not refreshed:
                    # The secret may have been rotated since it was cached: fetch it again, try once more.
                    refreshed = True
                    fresh = cached.refresh()
                    logger.warning(
                        "%s answered %d; fetched the credential again from %s (%s), retrying once",
                        self.endpoint_name,
                        status,
                        cached.source.description,
                        "it changed" if fresh != credential else "unchanged",
                    )
                    credential = fresh
                    headers, redact = self._headers(credential)
                    retries += 1
                    continue
                verdict = self.destination.read_response(response, pending)
                if verdict.confirm is not None:
                    pending_what = verdict.confirm.pending
                    confirmed = self._confirm(verdict.confirm, pending, headers, redact, seconds_left)
                    if confirmed is None:
                        # Sending again now would only wait for another confirmation: leave it to the retry.
                        raise DeadlineError(
                            f"{self.endpoint_name}: the intake took the batch but had not confirmed it "
                            f"({pending_what}) when the invocation's time ran out; the retry resends the "
                            "object with the same event_ids. Raise the function timeout",
                            retries=retries,
                        )
                    verdict = confirmed
                if verdict.refused:
                    message = (
                        f"{self.endpoint_name}: {redact(verdict.failure)}"
                        if verdict.failure
                        else self._permanent_message(response, redact)
                    )
                    raise PermanentDeliveryError(message, retries=retries)
                if 200 <= status <= 299:
                    bytes_sent += len(body)
                duplicates += verdict.duplicates
                rejected_items += verdict.rejected
                rejections += (
                    Rejection(
                        None if r.position is None else pending.original_position(r.position),
                        redact(r.reason),
                    )
                    for r in verdict.rejections
                )
                if verdict.delivered:
                    return SendResult(
                        status, attempts, retries, bytes_sent, duplicates, rejected_items, tuple(rejections)
                    )
                failure = redact(verdict.failure)
                retry_after = verdict.after
                if retry_after is None:
                    retry_after = parse_retry_after(response.retry_after, self._wall_clock())
                if len(verdict.retry) < pending.records:
                    # Only some items failed: send those alone, cut from the batch, not re-encoded.
                    pending = pending.subset(verdict.retry)
                    body = pending.compress(config.compression_level)
            decision = plan_retry(
                retries_done=retries,
                max_retries=config.max_retries,
                retry_after=retry_after,
                seconds_left=seconds_left() - self.deadline_margin,
                attempt_seconds=config.timeout_seconds,
                max_wait=config.max_retry_wait_seconds,
                rng=self._rng,
            )
            if decision.delay is None:
                message = f"{self.endpoint_name}: {failure}; {decision.reason} ({attempts} attempts)"
                if decision.out_of_time:
                    raise DeadlineError(
                        f"{message}. The retry resends the object with the same event_ids; raise the "
                        "function timeout or lower HTTP_TIMEOUT_SECONDS",
                        retries=retries,
                    )
                raise TransientDeliveryError(message, retries=retries)
            logger.warning(
                "%s: %s; retry %d of %d in %.2fs (%s)",
                self.endpoint_name,
                failure,
                retries + 1,
                config.max_retries,
                decision.delay,
                decision.reason,
            )
            self._sleep(decision.delay)
            retries += 1

    def _confirm(
        self,
        confirmation: Confirmation,
        sent: Batch,
        headers: dict[str, str],
        redact: Redactor,
        seconds_left: Callable[[], float],
    ) -> Verdict | None:
        """Ask until the intake confirms ``sent`` is durable, within the invocation's time (a Lambda has no
        background); None when it is still unconfirmed as the time is up (transient)."""
        timeout = self._config.timeout_seconds
        plain = {name: value for name, value in headers.items() if name != "Content-Encoding"}
        while True:
            if confirmation.wait + timeout > seconds_left() - self.deadline_margin:
                return None
            self._sleep(confirmation.wait)
            budget = min(timeout, seconds_left() - self.deadline_margin)
            try:
                signed = self._sign(confirmation.url, confirmation.body, plain)
                response = self._transport.post(confirmation.url, confirmation.body, signed, budget)
            except TransportError as exc:
                logger.warning(
                    "%s: asking for %s: %s", self.endpoint_name, confirmation.pending, redact(str(exc))
                )
                verdict = Verdict(confirm=confirmation)
            else:
                verdict = confirmation.read(response, sent)
            if verdict.confirm is None:
                return verdict
            confirmation = verdict.confirm

    def _headers(self, credential: str | None) -> tuple[dict[str, str], Redactor]:
        """The request headers, and what masks the credential in any text the endpoint sends back.

        The credential's forms are also handed to the log formatter's last guard.
        """
        headers = {
            "Content-Type": self.destination.content_type,
            "Content-Encoding": "gzip",
            "User-Agent": USER_AGENT,
            **dict(self.destination.extra_headers),
        }
        headers.update(auth_headers(self._config, credential))
        forms = secret_forms(self._config, credential)
        if self._signer is not None:
            forms += self._signer.secret_forms()
        redaction.remember(forms)
        return headers, Redactor(forms)

    def _sign(self, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        """``headers`` with a fresh signature over this exact body, when the requests are signed."""
        return headers if self._signer is None else self._signer.signed_headers(url, body, headers)

    def _timeout_context(self, budget: float) -> str:
        timeout = self._config.timeout_seconds
        if budget < timeout:
            return f" (cut from HTTP_TIMEOUT_SECONDS={timeout:g} to the time left before the deadline)"
        return " (HTTP_TIMEOUT_SECONDS bounds a whole attempt, from connecting to the last byte)"

    def _permanent_message(self, response: HttpResponse, redact: Redactor) -> str:
        status = response.status
        snippet = _sanitize(response.body.decode("utf-8", "replace"), redact)
        text = f"{self.endpoint_name} answered HTTP {status} {_phrase(status)}".rstrip()
        if snippet:
            text += f": {snippet!r}"
        return f"{text}; {_status_hint(status, self.destination.accepts, self._config.auth_type)}"
