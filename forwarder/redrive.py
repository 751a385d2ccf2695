"""`python -m forwarder redrive`: hand the dead-letter queue's failed events back to the forwarder.

The stack's dead-letter queue is the forwarder's on-failure destination: after the last retry Lambda
sends it an invocation record, ``{"version", "timestamp", "requestContext": {"requestId", "functionArn",
"condition", "approximateInvokeCount"}, "requestPayload": <the original event>, "responseContext",
"responsePayload": <the error>}``. Redriving invokes the function asynchronously with the original event
(what SNS did the first time) and deletes the message only once Lambda accepted the invocation (202).
The forwarder's event_ids make any resulting duplicates harmless to a deduplicating receiver.

The dead-letter queue also takes, from the work queue's redrive policy, work items that failed
``maxReceiveCount`` times: their body is the work item itself (the object version and the line it resumes
at), and redriving one invokes the function with it, so the file resumes at that line.

A message this command cannot redrive (not JSON, no ``requestPayload`` because Lambda leaves the event out
of a record too large for the destination, an event the forwarder does not understand) stays in the
queue, and so does any message whose invocation failed. Messages kept, and every message of a dry run,
are made visible again at the end, instead of staying hidden for the visibility timeout.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from forwarder.events import EventError, parse_event
from forwarder.progress import count_of
from forwarder.work import WorkItem

__all__ = [
    "DeadLetter",
    "RedriveError",
    "RedriveSummary",
    "read_dead_letter",
    "redrive",
    "run_command",
]

EXIT_OK = 0
EXIT_KEPT = 1  # some messages could not be redriven and are still in the queue
EXIT_INPUT_ERROR = 2  # bad arguments, missing queue or function, no access

DEFAULT_WAIT_SECONDS = 2  # long polling: an empty answer then means the queue is really empty
DEFAULT_HOLD_SECONDS = 120  # messages being handled stay invisible this long (then come back by themselves)
_RECEIVE_MAX = 10  # SQS ReceiveMessage and the batch calls take at most 10 messages
_ERROR_CHARS = 200

_QUEUE_MISSING_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
# Invoke errors that will fail for every message alike: stop instead of trying each one.
_FATAL_INVOKE_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "KMSAccessDeniedException",
    }
)
_QUEUE_URL_REGION = re.compile(r"^https://(?:sqs\.)?([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d)\.")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class RedriveError(Exception):
    """The redrive cannot start or go on (missing queue or function, no access); messages stay queued."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-letter message, read: the event to redrive and what the record says about the failure."""

    message_id: str
    receipt_handle: str
    payload: Any = None
    objects: tuple[str, ...] = ()
    condition: str | None = None
    attempts: int | None = None
    error: str | None = None
    problem: str | None = None  # why it cannot be redriven; None when it can

    def describe(self) -> str:
        """'s3://b/k, s3://b/k2 (RetriesExhausted after 3 attempts: TransientDeliveryError: ...)'."""
        what = ", ".join(self.objects) if self.objects else "no S3 objects"
        detail = [part for part in (self.condition, self._attempts()) if part]
        context = " ".join(detail)
        if self.error:
            context = f"{context}: {self.error}" if context else self.error
        return f"{what} ({context})" if context else what

    def _attempts(self) -> str:
        return f"after {self.attempts} attempts" if self.attempts else ""


def read_dead_letter(message: Mapping[str, Any]) -> DeadLetter:
    """Understand one SQS message of the dead-letter queue (pure: no AWS call).

    Accepts Lambda's on-failure destination record (the stack's set-up), a work item the work queue gave up
    on and, for a function configured with a classic dead-letter queue instead, a body that is the event
    itself.
    """
    message_id = str(message.get("MessageId", ""))
    receipt = str(message.get("ReceiptHandle", ""))
    try:
        body = json.loads(str(message.get("Body", "")))
    except ValueError:
        return DeadLetter(message_id, receipt, problem="the message body is not JSON")
    if not isinstance(body, dict):
        return DeadLetter(message_id, receipt, problem="the message body is not a JSON object")
    context = body.get("requestContext")
    condition = attempts = error = None
    payload: Any = body  # a classic dead-letter queue holds the event itself
    if isinstance(context, Mapping):
        condition = _text(context.get("condition"))
        count = context.get("approximateInvokeCount")
        attempts = count if isinstance(count, int) and not isinstance(count, bool) else None
        error = _error_text(body.get("responsePayload"))
        payload = body.get("requestPayload")
    read = DeadLetter(message_id, receipt, condition=condition, attempts=attempts, error=error)
    if payload is None:  # only a destination record (context is a Mapping) can lack its event
        request_id = _text(body["requestContext"].get("requestId")) or "?"
        return replace(
            read,
            problem=(
                "the record has no requestPayload (Lambda leaves the event out when the record is too "
                f"large for the queue); find the object keys in the forwarder's logs for request "
                f"{request_id} and send them with `replay`"
            ),
        )
    try:
        parsed = parse_event(payload)
    except EventError as exc:
        return replace(read, problem=f"the event is not one the forwarder understands ({exc})")
    return replace(
        read,
        payload=payload,
        objects=tuple(obj.describe() if isinstance(obj, WorkItem) else obj.uri for obj in parsed.objects),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _error_text(response: Any) -> str | None:
    if not isinstance(response, Mapping):
        return None
    kind = _text(response.get("errorType"))
    message = _text(response.get("errorMessage"))
    text = ": ".join(part for part in (kind, message) if part)
    if not text:
        return None
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 3] + "..."


@dataclass(slots=True)
class RedriveSummary:
    received: int = 0
    redriven: int = 0
    failed: int = 0  # the invocation was not accepted; kept
    unusable: int = 0  # cannot be redriven as it is; kept
    not_deleted: int = 0  # invoked, but the delete failed: it will be redriven again next time
    kept: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.failed or self.unusable)


def redrive(
    sqs: Any,
    lambda_client: Any,
    *,
    queue_url: str,
    function_name: str,
    max_messages: int | None = None,
    dry_run: bool = False,
    out: TextIO | None = None,
    wait_seconds: int = DEFAULT_WAIT_SECONDS,
    hold_seconds: int = DEFAULT_HOLD_SECONDS,
) -> RedriveSummary:
    """Receive until the queue is empty (or ``max_messages``), invoke the function with each original event
    (InvocationType Event) and delete each message whose invocation was accepted.

    Raises RedriveError when the queue or function cannot be used; messages received so far and not
    redriven are released (made visible) first.
    """
    out = out or sys.stdout
    summary = RedriveSummary()
    held: dict[str, str] = {}  # message id -> latest receipt handle, to release at the end
    done: set[str] = set()
    try:
        while max_messages is None or summary.received < max_messages:
            wanted = (
                _RECEIVE_MAX if max_messages is None else min(_RECEIVE_MAX, max_messages - summary.received)
            )
            messages = _receive(sqs, queue_url, wanted, wait_seconds, hold_seconds)
            fresh = [m for m in messages if m.get("MessageId") not in done and m.get("MessageId") not in held]
            for message in messages:
                if message.get("MessageId") in held:
                    # Seen before and its hold ran out: keep the newest receipt handle for the release.
                    held[str(message["MessageId"])] = str(message["ReceiptHandle"])
            if not fresh:
                break
            for message in fresh:
                dead = read_dead_letter(message)
                summary.received += 1
                # Held until Lambda accepted it, so an error that stops the run releases it too.
                held[dead.message_id] = dead.receipt_handle
                if dead.problem is not None:
                    summary.unusable += 1
                    summary.kept.append(dead.message_id)
                    print(f"kept {dead.message_id}: {dead.problem}", file=out)
                    continue
                if dry_run:
                    print(f"would redrive {dead.message_id}: {dead.describe()}", file=out)
                    continue
                if _invoke(lambda_client, function_name, dead, out):
                    del held[dead.message_id]
                    done.add(dead.message_id)
                    summary.redriven += 1
                    if not _delete(sqs, queue_url, dead, out):
                        summary.not_deleted += 1
                else:
                    summary.failed += 1
                    summary.kept.append(dead.message_id)
    finally:
        _release(sqs, queue_url, held, out)
    return summary


def _receive(sqs: Any, queue_url: str, count: int, wait_seconds: int, hold_seconds: int) -> list[Any]:
    try:
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=hold_seconds,
        )
    except ClientError as exc:
        raise RedriveError(_queue_error(exc, queue_url, "receive messages from")) from exc
    except BotoCoreError as exc:
        raise RedriveError(f"could not receive messages from {queue_url}: {exc}") from exc
    messages = response.get("Messages", [])
    return list(messages) if isinstance(messages, list) else []


def _invoke(lambda_client: Any, function_name: str, dead: DeadLetter, out: TextIO) -> bool:
    """Invoke asynchronously; True when Lambda accepted the event (202)."""
    try:
        response = lambda_client.invoke(
            FunctionName=function_name,
            InvocationType="Event",
            Payload=json.dumps(dead.payload, separators=(",", ":")).encode(),
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        text = f"{code}: {error.get('Message', '')}"
        if code in _FATAL_INVOKE_CODES:
            raise RedriveError(
                f"cannot invoke {function_name} ({text}); check the function name (the stack output "
                "ForwarderFunctionArn) and that your credentials may lambda:InvokeFunction on it"
            ) from exc
        print(f"kept {dead.message_id}: invoking {function_name} failed ({text})", file=out)
        return False
    except BotoCoreError as exc:
        print(f"kept {dead.message_id}: invoking {function_name} failed ({exc})", file=out)
        return False
    status = response.get("StatusCode")
    if status != 202:
        print(f"kept {dead.message_id}: {function_name} answered {status}, not 202 (accepted)", file=out)
        return False
    print(f"redriven {dead.message_id}: {dead.describe()}", file=out)
    return True


def _delete(sqs: Any, queue_url: str, dead: DeadLetter, out: TextIO) -> bool:
    try:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=dead.receipt_handle)
    except (ClientError, BotoCoreError) as exc:
        print(
            f"warning: {dead.message_id} was redriven but not deleted ({exc}); it will be redriven again "
            "by the next run (the receiver can drop the duplicates by event_id)",
            file=out,
        )
        return False
    return True


def _release(sqs: Any, queue_url: str, held: Mapping[str, str], out: TextIO) -> None:
    """Make kept messages visible again now rather than after the hold."""
    items = list(held.items())
    for start in range(0, len(items), _RECEIVE_MAX):
        chunk = items[start : start + _RECEIVE_MAX]
        entries = [
            {"Id": str(number), "ReceiptHandle": receipt, "VisibilityTimeout": 0}
            for number, (_, receipt) in enumerate(chunk)
        ]
        try:
            response = sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            print(f"warning: could not make {len(chunk)} kept messages visible again ({exc})", file=out)
            continue
        failed = response.get("Failed") or []
        if failed:
            print(
                f"warning: {len(failed)} kept messages stay hidden until their visibility timeout ends",
                file=out,
            )


def _queue_error(exc: ClientError, queue_url: str, action: str) -> str:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", ""))
    if code in _QUEUE_MISSING_CODES:
        return (
            f"queue {queue_url} does not exist ({code}); use the stack output DeadLetterQueueUrl, "
            "in the stack's region"
        )
    if "AccessDenied" in code:
        return (
            f"access denied: cannot {action} {queue_url} ({code}: {message}); your credentials need "
            "sqs:ReceiveMessage, sqs:DeleteMessage and sqs:ChangeMessageVisibility on it"
        )
    return f"cannot {action} {queue_url} ({code}: {message})"


def queue_region(queue_url: str) -> str | None:
    """The region in an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>), if any."""
    match = _QUEUE_URL_REGION.match(queue_url)
    return match.group(1) if match else None


# --- command line ----------------------------------------------------------------------------------------


def run_command(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run `redrive` from parsed arguments; return the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    region = queue_region(args.queue_url)
    config = BotoConfig(
        retries={"max_attempts": 8, "mode": "standard"}, user_agent_extra="alb-log-onboarding"
    )
    sqs = boto3.client("sqs", region_name=region, config=config)
    lambda_client = boto3.client("lambda", region_name=region, config=config)
    try:
        _check_queue(sqs, args.queue_url, err)
        _check_function(lambda_client, args.function_name)
        summary = redrive(
            sqs,
            lambda_client,
            queue_url=args.queue_url,
            function_name=args.function_name,
            max_messages=args.max,
            dry_run=args.dry_run,
            out=out,
            wait_seconds=DEFAULT_WAIT_SECONDS if args.wait_seconds is None else args.wait_seconds,
        )
    except RedriveError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_INPUT_ERROR
    except NoCredentialsError:
        print("error: no AWS credentials found: configure them as for the AWS CLI", file=err)
        return EXIT_INPUT_ERROR
    if args.dry_run:
        print(
            f"dry run: {count_of(summary.received, 'message')} read, "
            f"{summary.received - summary.unusable} would be "
            f"redriven, {summary.unusable} cannot be; nothing was invoked or deleted",
            file=out,
        )
        return EXIT_OK if summary.unusable == 0 else EXIT_KEPT
    print(
        f"redrive: {count_of(summary.received, 'message')} read, "
        f"{summary.redriven} redriven to {args.function_name} "
        f"and deleted, {summary.failed} failed to invoke, {summary.unusable} cannot be redriven"
        + (f", {summary.not_deleted} redriven but not deleted" if summary.not_deleted else "")
        + ("" if summary.ok else "; the kept messages are still in the queue"),
        file=out,
    )
    return EXIT_OK if summary.ok else EXIT_KEPT


def _check_queue(sqs: Any, queue_url: str, err: TextIO) -> None:
    try:
        response = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
    except ClientError as exc:
        raise RedriveError(_queue_error(exc, queue_url, "read")) from exc
    except NoCredentialsError:
        raise
    except BotoCoreError as exc:
        raise RedriveError(f"cannot reach {queue_url}: {exc}") from exc
    attributes = response.get("Attributes", {})
    waiting = attributes.get("ApproximateNumberOfMessages", "?")
    hidden = attributes.get("ApproximateNumberOfMessagesNotVisible", "?")
    print(f"{queue_url}: about {waiting} messages waiting, {hidden} in flight", file=err)


def _check_function(lambda_client: Any, function_name: str) -> None:
    """Fail before touching the queue when the function does not exist (a typo would otherwise cost a
    failed invocation per message). Lacking permission to read its configuration is not an error."""
    try:
        lambda_client.get_function_configuration(FunctionName=function_name)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code == "ResourceNotFoundException":
            raise RedriveError(
                f"function {function_name} does not exist in this region; use the stack output "
                "ForwarderFunctionArn"
            ) from exc
    except BotoCoreError as exc:
        raise RedriveError(f"cannot reach Lambda: {exc}") from exc
