"""Lambda entry point: event -> units (S3 objects, CloudWatch Logs batches) -> forward_unit, and the answer
Lambda expects.

SQS invocations return a partial batch response (``batchItemFailures``; the event source mapping needs
``ReportBatchItemFailures``) so one bad file does not send the whole batch back. SNS, S3, EventBridge and
CloudWatch Logs subscriptions invoke asynchronously: a failure is raised, so Lambda retries the event and
then hands it to the function's on-failure destination (the stack's dead-letter queue).

With WORK_QUEUE_URL, a file not finished in time is handed on to the work queue from the first line not
delivered (forwarder.continuation), and so are the objects of an event this invocation has no time left to
start; the work queue's event source mapping brings each back as an SQS message holding a work item.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from forwarder import redaction
from forwarder.auth import credential_from_config
from forwarder.config import DEFAULT_LOG_LEVEL, LOG_LEVEL, LOG_LEVELS, Config
from forwarder.continuation import Continuation, WorkQueueContinuation
from forwarder.events import SOURCE_SQS, Message, ObjectRef, ParsedEvent, parse_event
from forwarder.geo import GeoEnricher, load_enricher
from forwarder.metrics import OUTCOME_CONTINUED, ObjectStats, Reporter, configure_logging
from forwarder.pipeline import forward_unit
from forwarder.sender import DeadlineError, Sender, reset_pool
from forwarder.units import unit_for
from forwarder.work import ORIGIN_CONTINUATION, WorkItem

logger = logging.getLogger(__name__)

_BOTO_CONFIG = BotoConfig(
    retries={"max_attempts": 4, "mode": "standard"},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra="alb-log-onboarding-forwarder",
)
# Queueing a continuation happens in the seconds kept for it (continuation.DEFAULT_RESERVE_SECONDS):
# short timeouts and one retry, after which the object fails as it would without a work queue.
_SQS_CONFIG = BotoConfig(
    retries={"total_max_attempts": 2, "mode": "standard"},
    connect_timeout=1,
    read_timeout=2,
    user_agent_extra="alb-log-onboarding-forwarder",
)


@dataclass(slots=True)
class _Runtime:
    """What survives between warm invocations: parsed config, clients, connection pool, credential cache."""

    config: Config
    sender: Sender
    clients: dict[str, Any]
    geo: GeoEnricher | None = None
    continuation: Continuation | None = None


_runtime: _Runtime | None = None
_runtime_lock = threading.Lock()
_request_id: str | None = None
_sleep: Callable[[float], None] = time.sleep


def handler(event: Any, context: Any) -> dict[str, Any] | None:
    """Forward every object the event announces."""
    global _request_id  # noqa: PLW0603 -- read by the log formatter
    _request_id = getattr(context, "aws_request_id", None)
    runtime = _get_runtime()
    parsed = parse_event(event)
    for message in parsed.messages:
        for reason in message.skipped:
            logger.debug("ignored: %s", reason)
    reporter = Reporter(function_name=getattr(context, "function_name", None))
    seconds_left = _seconds_left(context)
    if parsed.source == SOURCE_SQS:
        return _handle_sqs(parsed, runtime, reporter, seconds_left)
    _handle_async(parsed, runtime, reporter, seconds_left)
    return None


def reset(*, sleep: Callable[[float], None] = time.sleep) -> None:
    """Forget the cached configuration, clients, credential and connections; the next invocation builds
    them again from the environment (tests pass ``sleep`` to observe retry waits without waiting)."""
    global _runtime, _sleep  # noqa: PLW0603
    with _runtime_lock:
        _runtime = None
        _sleep = sleep
    reset_pool()
    redaction.forget()


def _handle_sqs(
    parsed: ParsedEvent, runtime: _Runtime, reporter: Reporter, seconds_left: Callable[[], float]
) -> dict[str, Any]:
    failed: list[str] = []
    out_of_time = False
    for message in parsed.messages:
        message_id = message.message_id or ""
        if out_of_time:
            failed.append(message_id)
            continue
        if message.error is not None:
            logger.error(
                "SQS message %s is not an S3 notification or a work item: %s", message_id, message.error
            )
            failed.append(message_id)
            continue
        try:
            # Once a message was handed on part-way, later ones are not started: they fail, and SQS
            # delivers them again.
            out_of_time = _forward_message(message, runtime, reporter, seconds_left)
        except DeadlineError:
            out_of_time = True
            failed.append(message_id)
        except Exception:
            # Reported by forward_unit (summary line and metrics); the message goes back to the queue.
            logger.debug("SQS message %s failed", message_id, exc_info=True)
            failed.append(message_id)
    logger.info(
        "processed %d SQS messages, %d failed", len(parsed.messages), len(failed), extra={"failed": failed}
    )
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def _handle_async(
    parsed: ParsedEvent, runtime: _Runtime, reporter: Reporter, seconds_left: Callable[[], float]
) -> None:
    errors: list[Exception] = []
    for message in parsed.messages:
        try:
            _forward_message(message, runtime, reporter, seconds_left)
        except DeadlineError as exc:
            errors.append(exc)
            break
        except Exception as exc:  # noqa: BLE001 -- collected, logged by the reporter, re-raised below
            errors.append(exc)
    if errors:
        if len(errors) > 1:
            logger.error("%d objects of this event failed; raising the first", len(errors))
        # Re-raise so Lambda retries the event, then sends it to the on-failure destination.
        raise errors[0]


def _forward_message(
    message: Message, runtime: _Runtime, reporter: Reporter, seconds_left: Callable[[], float]
) -> bool:
    """Forward each unit of the message; keep going after a failure, except when out of time.

    True when the time ran out and the rest was handed on to the work queue."""
    first_error: Exception | None = None
    out_of_time = False
    for announced in message.objects:
        if isinstance(announced, ObjectRef) and _hand_on_unstarted(
            announced, runtime, reporter, seconds_left
        ):
            out_of_time = True
            continue
        try:
            stats = forward_unit(
                unit_for(announced, s3=runtime.clients["s3"]),
                sender=runtime.sender,
                seconds_left=seconds_left,
                report=reporter,
                enrich=runtime.geo.enrich if runtime.geo is not None else None,
                continuation=runtime.continuation,
            )
        except DeadlineError:
            raise
        except Exception as exc:  # noqa: BLE001 -- reported per object, the first is re-raised below
            first_error = first_error or exc
        else:
            out_of_time = out_of_time or stats.outcome == OUTCOME_CONTINUED
    if first_error is not None:
        raise first_error
    return out_of_time


def _hand_on_unstarted(
    ref: ObjectRef, runtime: _Runtime, reporter: Reporter, seconds_left: Callable[[], float]
) -> bool:
    """Queue, from line 1, an object of a notification this invocation has no time left to start (an
    earlier object used it); False when there is time, or no work queue, or the event gave no ETag.

    Work items are never handed on unstarted: one that gets no line through fails (no endless chains)."""
    continuation = runtime.continuation
    if continuation is None or ref.etag is None:
        return False
    if seconds_left() - continuation.reserve_seconds >= runtime.sender.seconds_needed():
        return False
    item = WorkItem(
        bucket=ref.bucket,
        key=ref.key,
        etag=ref.etag,
        version_id=ref.version_id,
        invocation=2,
        origin=ORIGIN_CONTINUATION,
    )
    if not continuation(item):
        return False
    reporter(
        ObjectStats(bucket=ref.bucket, key=ref.key, etag=ref.etag, outcome=OUTCOME_CONTINUED, continued_at=1)
    )
    return True


def _seconds_left(context: Any) -> Callable[[], float]:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return lambda: math.inf
    return lambda: remaining() / 1000.0


def _get_runtime() -> _Runtime:
    global _runtime  # noqa: PLW0603
    with _runtime_lock:
        if _runtime is None:
            # JSON logs from the start, so configuration warnings and errors are structured too.
            level = os.environ.get(LOG_LEVEL, "").strip().upper()
            configure_logging(level if level in LOG_LEVELS else DEFAULT_LOG_LEVEL, lambda: _request_id)
            config = Config.from_env(os.environ)
            configure_logging(config.log_level, lambda: _request_id)
            clients: dict[str, Any] = {}

            def client(name: str) -> Callable[[], Any]:
                def get() -> Any:
                    if name not in clients:
                        clients[name] = boto3.client(name, config=_BOTO_CONFIG)  # type: ignore[call-overload]
                    return clients[name]

                return get

            credential = credential_from_config(
                config, secretsmanager=client("secretsmanager"), ssm=client("ssm")
            )
            clients["s3"] = boto3.client("s3", config=_BOTO_CONFIG)
            # Once per container: a database that cannot be loaded fails every invocation, loudly.
            geo = load_enricher(clients["s3"], config.geo_databases)
            continuation = None
            if config.work_queue_url is not None:
                sqs = boto3.client("sqs", config=_SQS_CONFIG)
                continuation = WorkQueueContinuation(sqs, config.work_queue_url)
            _runtime = _Runtime(
                config=config,
                sender=Sender(config, credential, sleep=_sleep),
                clients=clients,
                geo=geo,
                continuation=continuation,
            )
        return _runtime
