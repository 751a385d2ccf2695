"""Turn a Lambda event (SNS, SQS, S3, EventBridge or CloudWatch Logs) into the units it announces.

Shapes accepted, nested in any of the ways AWS delivers them:
- S3 notification ``{"Records": [{"eventSource": "aws:s3", "s3": {...}}]}`` (keys URL-encoded, ``+`` = space);
- SNS to Lambda: each record's ``Sns.Message`` is the S3 notification as a JSON string;
- SQS to Lambda: each record's ``body`` is the S3 notification JSON, an SNS envelope whose ``Message`` is
  that JSON (SNS -> SQS without raw delivery), or an EventBridge event;
- EventBridge ``Object Created`` events (``detail.object.key`` is NOT URL-encoded);
- a CloudWatch Logs subscription filter's ``{"awslogs": {"data": ...}}``: one batch of log events (a
  ``CONTROL_MESSAGE``, sent to check that the destination is reachable, is skipped);
- a Lambda on-failure destination record (the dead-letter queue's messages): its ``requestPayload``, so
  a failed event can be redriven by invoking the function with the queue message as it is;
- a work item ``{"forwarder_work": {...}}`` (forwarder.work): an SQS body from the stack's work queue, or
  the payload of a direct invocation (``redrive`` of a work item the queue gave up on). It announces the
  WorkItem itself: one object version, to forward from a line on.
``s3:TestEvent`` messages, the ``ELBAccessLogTestFile`` ELB writes when logging is enabled and event types
other than ObjectCreated are skipped, with a reason kept for a debug log line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from forwarder.cloudwatch import CONTROL_MESSAGE, LogsBatch, LogsDataError, decode_awslogs
from forwarder.work import WorkItem, WorkItemError, is_work_item

SOURCE_SNS = "sns"
SOURCE_SQS = "sqs"
SOURCE_S3 = "s3"
SOURCE_EVENTBRIDGE = "eventbridge"
SOURCE_REDRIVE = "redrive"
SOURCE_CLOUDWATCH_LOGS = "cloudwatch_logs"
SOURCE_WORK_ITEM = "work_item"

ELB_TEST_FILE_SUFFIX = "ELBAccessLogTestFile"

# SQS body -> destination record -> SNS event -> S3 notification is the deepest legitimate nesting.
_MAX_DEPTH = 5


class EventError(ValueError):
    """The event (or one SQS message) does not have a shape the forwarder understands."""


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One S3 object announced by an event."""

    bucket: str
    key: str
    etag: str | None = None
    version_id: str | None = None
    size: int | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


# What an event announces: an S3 object, a CloudWatch Logs delivery, or an object to forward from a line on.
Announced = ObjectRef | LogsBatch | WorkItem


@dataclass(frozen=True, slots=True)
class Message:
    """What succeeds or fails as a whole: one SQS message, or the whole event otherwise.

    ``objects`` are the units it announces: S3 objects, the CloudWatch Logs batch of a subscription, or
    work items (an S3 object version to forward from a line on).
    """

    objects: tuple[Announced, ...]
    skipped: tuple[str, ...] = ()
    message_id: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    source: str
    messages: tuple[Message, ...]

    @property
    def objects(self) -> tuple[Announced, ...]:
        return tuple(obj for message in self.messages for obj in message.objects)


def parse_event(event: Any) -> ParsedEvent:
    """Classify the event and extract every ObjectCreated object; raise EventError on unknown shapes.

    For SQS, a message that cannot be understood does not fail the others: it comes back with ``error``
    set, so the handler reports it as a batch item failure.
    """
    if not isinstance(event, Mapping):
        raise EventError(f"event is a {type(event).__name__}, not a JSON object")
    records = event.get("Records")
    if isinstance(records, list) and records and all(_is_sqs_record(r) for r in records):
        return ParsedEvent(SOURCE_SQS, tuple(_sqs_message(record) for record in records))
    collector = _Collector()
    collector.payload(event, depth=0)
    if isinstance(records, list) and records and all(_is_sns_record(r) for r in records):
        source = SOURCE_SNS
    elif "detail-type" in event:
        source = SOURCE_EVENTBRIDGE
    elif _is_destination_record(event):
        source = SOURCE_REDRIVE
    elif "awslogs" in event:
        source = SOURCE_CLOUDWATCH_LOGS
    elif is_work_item(event):
        source = SOURCE_WORK_ITEM
    else:
        source = SOURCE_S3
    return ParsedEvent(source, (collector.message(),))


def _is_sqs_record(record: Any) -> bool:
    return isinstance(record, Mapping) and record.get("eventSource") == "aws:sqs" and "body" in record


def _is_sns_record(record: Any) -> bool:
    return (
        isinstance(record, Mapping)
        and record.get("EventSource") == "aws:sns"
        and isinstance(record.get("Sns"), Mapping)
    )


def _is_destination_record(payload: Mapping[str, Any]) -> bool:
    return isinstance(payload.get("requestContext"), Mapping) and "requestPayload" in payload


def _sqs_message(record: Mapping[str, Any]) -> Message:
    message_id = str(record.get("messageId", ""))
    collector = _Collector()
    try:
        collector.payload(_json_string(record.get("body"), "SQS body"), depth=1)
    except EventError as exc:
        return Message(objects=(), message_id=message_id, error=str(exc))
    return collector.message(message_id)


def _json_string(value: Any, what: str) -> Any:
    if not isinstance(value, str):
        raise EventError(f"{what} is not a string")
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise EventError(f"{what} is not JSON ({exc.msg} at position {exc.pos})") from None


class _Collector:
    __slots__ = ("objects", "skipped")

    def __init__(self) -> None:
        self.objects: list[Announced] = []
        self.skipped: list[str] = []

    def message(self, message_id: str | None = None) -> Message:
        return Message(objects=tuple(self.objects), skipped=tuple(self.skipped), message_id=message_id)

    def payload(self, payload: Any, *, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise EventError("event nested too deeply")
        if not isinstance(payload, Mapping):
            raise EventError(f"expected a JSON object, got {type(payload).__name__}")
        if is_work_item(payload):
            try:
                self.objects.append(WorkItem.from_payload(payload))
            except WorkItemError as exc:
                raise EventError(f"work item: {exc}") from None
            return
        if payload.get("Event") == "s3:TestEvent":
            # Sent by S3 when a notification configuration is saved; it has no Records.
            self.skipped.append(f"s3:TestEvent for bucket {payload.get('Bucket', '?')}")
            return
        if payload.get("Type") == "Notification" and "Message" in payload and "TopicArn" in payload:
            # SNS envelope, as SQS receives it from a topic without raw message delivery.
            self.payload(_json_string(payload["Message"], "SNS Message"), depth=depth + 1)
            return
        if _is_destination_record(payload):
            # A Lambda on-failure destination record (what the dead-letter queue holds): the original
            # event is under requestPayload. Accepting it makes redriving the queue a plain invoke.
            self.payload(payload["requestPayload"], depth=depth + 1)
            return
        if "detail-type" in payload:
            self._eventbridge(payload)
            return
        if "awslogs" in payload:
            self._awslogs(payload["awslogs"])
            return
        records = payload.get("Records")
        if isinstance(records, list):
            for record in records:
                if _is_sns_record(record):
                    self.payload(_json_string(record["Sns"].get("Message"), "Sns.Message"), depth=depth + 1)
                else:
                    self._s3_record(record)
            return
        keys = ", ".join(sorted(map(str, payload))[:10])
        raise EventError(
            "unrecognised event: expected S3 notification Records, an SNS or SQS wrapper, an EventBridge "
            f"event, a CloudWatch Logs subscription event or a work item (top-level keys: {keys})"
        )

    def _s3_record(self, record: Any) -> None:
        if not isinstance(record, Mapping) or record.get("eventSource") != "aws:s3":
            raise EventError("a Records entry is not an S3 event record (eventSource aws:s3)")
        name = str(record.get("eventName", ""))
        s3 = record.get("s3")
        if not isinstance(s3, Mapping):
            raise EventError("S3 event record without an s3 section")
        bucket = _get(s3, "bucket", "name")
        obj = s3.get("object")
        if not isinstance(obj, Mapping):
            obj = {}
        raw_key = obj.get("key")
        if not isinstance(bucket, str) or not bucket or not isinstance(raw_key, str) or not raw_key:
            raise EventError("S3 event record without s3.bucket.name and s3.object.key")
        # S3 URL-encodes keys in notifications, with '+' for a space.
        key = unquote_plus(raw_key)
        if not name.startswith("ObjectCreated:"):
            self.skipped.append(f"{name or 'event without eventName'} for s3://{bucket}/{key}")
            return
        self._add(bucket, key, obj.get("eTag"), obj.get("versionId"), obj.get("size"))

    def _eventbridge(self, event: Mapping[str, Any]) -> None:
        detail_type = event.get("detail-type")
        detail = event.get("detail")
        bucket = _get(detail, "bucket", "name")
        key = _get(detail, "object", "key")
        if event.get("source") != "aws.s3" or not isinstance(detail, Mapping):
            raise EventError(f"EventBridge event from {event.get('source')!r} is not an S3 event")
        if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
            raise EventError("EventBridge S3 event without detail.bucket.name and detail.object.key")
        if detail_type != "Object Created":
            self.skipped.append(f"{detail_type} for s3://{bucket}/{key}")
            return
        obj = detail["object"]
        # EventBridge keys are not URL-encoded.
        self._add(bucket, key, obj.get("etag"), obj.get("version-id"), obj.get("size"))

    def _awslogs(self, awslogs: Any) -> None:
        try:
            batch = decode_awslogs(awslogs)
        except LogsDataError as exc:
            raise EventError(f"CloudWatch Logs event: {exc}") from None
        if batch.message_type == CONTROL_MESSAGE:
            self.skipped.append(f"CloudWatch Logs {CONTROL_MESSAGE} for {batch.log_group or '?'}")
            return
        self.objects.append(batch)

    def _add(self, bucket: str, key: str, etag: Any, version_id: Any, size: Any) -> None:
        if key.endswith(ELB_TEST_FILE_SUFFIX):
            self.skipped.append(f"ELB test file s3://{bucket}/{key}")
            return
        self.objects.append(
            ObjectRef(
                bucket=bucket,
                key=key,
                etag=etag.strip('"') if isinstance(etag, str) and etag else None,
                version_id=version_id if isinstance(version_id, str) and version_id else None,
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            )
        )


def _get(mapping: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(part)
    return mapping
