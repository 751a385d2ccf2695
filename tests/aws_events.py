"""AWS-shaped events for the forwarder's tests (every tier), as the AWS documentation shows them.

S3 notification (event version 2.1, key URL-encoded), SNS -> Lambda, SQS -> Lambda (raw S3 body or an SNS
envelope), EventBridge "Object Created" (key not encoded), CloudWatch Logs subscription deliveries
(base64 of gzip of JSON), plus a Lambda context whose clock runs for real.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "alb-logs-123456789012-us-east-1-1a2b3c4d"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:onboarding-alb-logs-1a2b3c4d"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:alb-log-files"
FUNCTION_NAME = "onboarding-forwarder"


# --- Lambda context --------------------------------------------------------------------------------------


@dataclass
class FakeContext:
    """The attributes of the Lambda context object the forwarder uses; time runs for real."""

    remaining_ms: int = 300_000
    function_name: str = FUNCTION_NAME
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 256
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.remaining_ms - (time.monotonic() - self._started) * 1000))


@dataclass
class LateStartContext(FakeContext):
    """Like FakeContext, but the clock starts when the forwarder first asks: setup time does not count."""

    asked: bool = False

    def get_remaining_time_in_millis(self) -> int:
        if not self.asked:
            self.asked = True
            self._started = time.monotonic()
        return super().get_remaining_time_in_millis()


class ShrinkingContext(FakeContext):
    """Reports the given remaining times in turn, then the last one for good: the deadline arrives early."""

    def __init__(self, answers: list[int]) -> None:
        super().__init__()
        self.answers = answers

    def get_remaining_time_in_millis(self) -> int:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


# --- event builders --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """An object put into the moto bucket."""

    bucket: str
    key: str
    etag: str
    size: int = 1024
    lines: tuple[str, ...] = ()


def s3_record(
    obj: Stored, *, event_name: str = "ObjectCreated:Put", encoded_key: str | None = None
) -> dict[str, Any]:
    """One S3 notification record; ``encoded_key`` puts a key exactly as given, instead of encoding it."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2025-03-14T09:30:02.412Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AROAEXAMPLEID:elasticloadbalancing"},
        "requestParameters": {"sourceIPAddress": "10.0.1.25"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "alb-log-onboarding-1a2b3c4d",
            "bucket": {
                "name": obj.bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{obj.bucket}",
            },
            # S3 URL-encodes the key in notifications ('+' for a space).
            "object": {
                "key": quote_plus(obj.key, safe="/") if encoded_key is None else encoded_key,
                "size": obj.size,
                "eTag": obj.etag,
                "sequencer": "0055AED6DCD90281E5",
            },
        },
    }


def s3_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def s3_notification(*objects: Stored) -> dict[str, Any]:
    return s3_event(*(s3_record(obj) for obj in objects))


S3_TEST_EVENT = {
    "Service": "Amazon S3",
    "Event": "s3:TestEvent",
    "Time": "2025-03-14T09:00:00.089Z",
    "Bucket": BUCKET,
    "RequestId": "5582815E1AEA5ADF",
    "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
}


def sns_envelope(message: dict[str, Any], *, for_lambda: bool) -> dict[str, Any]:
    """An SNS notification; Lambda's copy spells SigningCertUrl/UnsubscribeUrl, the SQS copy ...URL."""
    url = "Url" if for_lambda else "URL"
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": TOPIC_ARN,
        "Subject": "Amazon S3 Notification",
        "Message": json.dumps(message),
        "Timestamp": "2025-03-14T09:30:02.512Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858f=",
        f"SigningCert{url}": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
        f"Unsubscribe{url}": f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC_ARN}:2bcfbf39",
        "MessageAttributes": {},
    }


def sns_event(*messages: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{TOPIC_ARN}:2bcfbf39-5b6a-4c5e-9d1e-3f0a6b7c8d9e",
                "Sns": sns_envelope(message, for_lambda=True),
            }
            for message in messages
        ]
    }


def sqs_event(*bodies: dict[str, Any] | str) -> dict[str, Any]:
    return {
        "Records": [
            sqs_record(body if isinstance(body, str) else json.dumps(body), message_id=str(uuid.uuid4()))
            for body in bodies
        ]
    }


def sqs_event_from(messages: list[dict[str, Any]], *, queue_arn: str) -> dict[str, Any]:
    """What an event source mapping invokes with for messages it got from ReceiveMessage."""
    return {
        "Records": [
            sqs_record(
                m["Body"],
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                queue_arn=queue_arn,
                receive_count=m.get("Attributes", {}).get("ApproximateReceiveCount", "1"),
            )
            for m in messages
        ]
    }


def sqs_record(
    body: str,
    *,
    message_id: str,
    receipt_handle: str = "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
    queue_arn: str = QUEUE_ARN,
    receive_count: str = "1",
) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": receipt_handle,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": receive_count,
            "SentTimestamp": "1710408602512",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1710408602519",
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def eventbridge_event(
    obj: Stored, *, detail_type: str = "Object Created", version_id: str | None = None
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": "2025-03-14T09:30:02Z",
        "region": REGION,
        "resources": [f"arn:aws:s3:::{obj.bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": obj.bucket},
            # EventBridge does not URL-encode the key.
            "object": {
                "key": obj.key,
                "size": obj.size,
                "etag": obj.etag,
                **({"version-id": version_id} if version_id else {}),
                "sequencer": "617f08299329d189",
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "127311923021",
            "source-ip-address": "10.0.1.25",
            "reason": "PutObject",
        },
    }


def destination_record(
    original: dict[str, Any],
    *,
    error_type: str = "TransientDeliveryError",
    error_message: str = "logs.example.com: HTTP 503 Service Unavailable; gave up after 6 retries",
) -> dict[str, Any]:
    """The on-failure destination record Lambda sends to the dead-letter queue after the last retry."""
    request_id = str(uuid.uuid4())
    return {
        "version": "1.0",
        "timestamp": "2025-03-14T09:41:07.568Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION_NAME}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": original,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {
            "errorMessage": error_message,
            "errorType": error_type,
            "requestId": request_id,
            "stackTrace": [],
        },
    }


# --- CloudWatch Logs subscription ------------------------------------------------------------------------

LOG_GROUP = "/aws/lambda/checkout"
LOG_STREAM = "2025/03/14/[$LATEST]0123456789abcdef0123456789abcdef"
# The shape of CloudWatch Logs event ids: 56 decimal digits, increasing within a delivery.
FIRST_LOG_EVENT_ID = 31953106606966983378809025079804211143289615424298221568
LOG_EVENT_TIME_MS = 1710408602412


def log_events(*messages: str, first_id: int = FIRST_LOG_EVENT_ID) -> list[dict[str, Any]]:
    """logEvents entries, one per message, a millisecond apart."""
    return [
        {"id": str(first_id + n), "timestamp": LOG_EVENT_TIME_MS + n, "message": message}
        for n, message in enumerate(messages)
    ]


def cloudwatch_logs_data(
    events: list[dict[str, Any]],
    *,
    log_group: str = LOG_GROUP,
    log_stream: str = LOG_STREAM,
    owner: str = ACCOUNT,
) -> dict[str, Any]:
    """The decoded payload of a subscription filter delivery (messageType DATA_MESSAGE)."""
    return {
        "messageType": "DATA_MESSAGE",
        "owner": owner,
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": ["onboarding-forwarder"],
        "logEvents": events,
    }


# What CloudWatch Logs sends when it checks that a destination is reachable.
CLOUDWATCH_CONTROL_DATA = {
    "messageType": "CONTROL_MESSAGE",
    "owner": "CloudwatchLogs",
    "logGroup": "",
    "logStream": "",
    "subscriptionFilters": [],
    "logEvents": [
        {
            "id": "",
            "timestamp": 1432826855000,
            "message": "CWL CONTROL MESSAGE: Checking health of destination Lambda function.",
        }
    ],
}


def cloudwatch_logs_event(data: dict[str, Any]) -> dict[str, Any]:
    """The event a subscription filter invokes Lambda with: base64 of the gzip of the JSON payload."""
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(data).encode())).decode()}}
