"""Event shapes as AWS delivers them (S3 notification 2.1, SNS, SQS, EventBridge), per the AWS docs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from forwarder.events import EventError, ObjectRef, parse_event

BUCKET = "alb-logs-123456789012-us-east-1"
KEY = (
    "prod/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2025/03/14/"
    "123456789012_elasticloadbalancing_us-east-1_app.my-lb.50dc6c495c0c9188_20250314T0930Z_10.0.1.25_2r6sxvm9.log.gz"
)
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:onboarding-alb-logs-1a2b3c4d"


def s3_record(
    key: str = KEY, *, event_name: str = "ObjectCreated:Put", etag: str = "0123456789abcdef"
) -> dict:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2025-03-14T09:30:02.412Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE:elasticloadbalancing"},
        "requestParameters": {"sourceIPAddress": "10.0.1.25"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "alb-log-onboarding-1a2b3c4d",
            "bucket": {
                "name": BUCKET,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{BUCKET}",
            },
            "object": {"key": key, "size": 1024, "eTag": etag, "sequencer": "0055AED6DCD90281E5"},
        },
    }


def s3_event(*records: dict) -> dict:
    return {"Records": list(records)}


TEST_EVENT = {
    "Service": "Amazon S3",
    "Event": "s3:TestEvent",
    "Time": "2025-03-14T09:00:00.089Z",
    "Bucket": BUCKET,
    "RequestId": "5582815E1AEA5ADF",
    "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
}


def sns_envelope(message: dict, *, lambda_style: bool) -> dict:
    """The SNS notification; Lambda spells the URL keys SigningCertUrl/UnsubscribeUrl, SQS ...URL."""
    url = "Url" if lambda_style else "URL"
    topic = TOPIC_ARN
    return {
        "Type": "Notification",
        "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "TopicArn": topic,
        "Subject": "Amazon S3 Notification",
        "Message": json.dumps(message),
        "Timestamp": "2025-03-14T09:30:02.512Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        f"SigningCert{url}": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-EXAMPLE.pem",
        f"Unsubscribe{url}": f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic}:x",
        "MessageAttributes": {},
    }


def sns_event(*messages: dict) -> dict:
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{TOPIC_ARN}:2bcfbf39-5b6a-4c5e-9d1e-3f0a6b7c8d9e",
                "Sns": sns_envelope(message, lambda_style=True),
            }
            for message in messages
        ]
    }


def sqs_event(*bodies: str) -> dict:
    return {
        "Records": [
            {
                "messageId": f"059f36b4-87a3-44ab-83d2-66197583{index:04d}",
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1545082649183",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1545082649185",
                },
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:alb-log-files",
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }


def eventbridge_event(key: str = KEY, detail_type: str = "Object Created") -> dict:
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2025-03-14T09:30:02Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {
                "key": key,
                "size": 5,
                "etag": "b1946ac92492d2347c6235b4d2611184",
                "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
                "sequencer": "617f08299329d189",
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


def test_plain_s3_notification() -> None:
    parsed = parse_event(s3_event(s3_record()))
    assert parsed.source == "s3"
    assert parsed.objects == (ObjectRef(BUCKET, KEY, etag="0123456789abcdef", size=1024),)


def test_sns_wrapped_s3_notification_with_several_records() -> None:
    other = KEY.replace("2r6sxvm9", "7hq2ka0z")
    parsed = parse_event(sns_event(s3_event(s3_record(), s3_record(other)), s3_event(s3_record(KEY + "x"))))
    assert parsed.source == "sns"
    assert [o.key for o in parsed.objects] == [KEY, other, KEY + "x"]
    assert len(parsed.messages) == 1  # async invocation: the event succeeds or fails as a whole


def test_sqs_with_s3_body_and_with_sns_envelope() -> None:
    raw = json.dumps(s3_event(s3_record()))
    enveloped = json.dumps(sns_envelope(s3_event(s3_record(KEY + ".2")), lambda_style=False))
    parsed = parse_event(sqs_event(raw, enveloped))
    assert parsed.source == "sqs"
    assert [m.message_id for m in parsed.messages] == [
        "059f36b4-87a3-44ab-83d2-661975830000",
        "059f36b4-87a3-44ab-83d2-661975830001",
    ]
    assert [m.objects[0].key for m in parsed.messages] == [KEY, KEY + ".2"]


def test_sqs_message_that_is_not_a_notification_fails_alone() -> None:
    parsed = parse_event(sqs_event("not json", json.dumps({"hello": 1}), json.dumps(s3_event(s3_record()))))
    first, second, third = parsed.messages
    assert first.error is not None and "not JSON" in first.error
    assert second.error is not None and "unrecognised event" in second.error
    assert third.error is None and third.objects[0].key == KEY


def test_eventbridge_object_created_key_is_not_url_decoded() -> None:
    key = "logs/a+b%20c.log.gz"
    parsed = parse_event(eventbridge_event(key))
    assert parsed.source == "eventbridge"
    assert parsed.objects == (
        ObjectRef(
            BUCKET,
            key,
            etag="b1946ac92492d2347c6235b4d2611184",
            version_id="IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
            size=5,
        ),
    )


def test_eventbridge_through_sqs() -> None:
    parsed = parse_event(sqs_event(json.dumps(eventbridge_event())))
    assert parsed.messages[0].objects[0].key == KEY


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("logs/my+file+name.log.gz", "logs/my file name.log.gz"),
        ("logs/a%2Bb.log.gz", "logs/a+b.log.gz"),
        ("logs/caf%C3%A9%3Dx.log.gz", "logs/café=x.log.gz"),
        ("logs/plain.log.gz", "logs/plain.log.gz"),
    ],
)
def test_s3_keys_are_url_decoded(encoded: str, decoded: str) -> None:
    assert parse_event(s3_event(s3_record(encoded))).objects[0].key == decoded


@pytest.mark.parametrize(
    "event",
    [
        TEST_EVENT,
        sns_event(TEST_EVENT),
        s3_event(s3_record("prod/AWSLogs/123456789012/ELBAccessLogTestFile")),
        sns_event(s3_event(s3_record("AWSLogs/123456789012/ELBAccessLogTestFile"))),
        s3_event(s3_record(event_name="ObjectRemoved:Delete")),
        eventbridge_event(detail_type="Object Deleted"),
        eventbridge_event("AWSLogs/123456789012/ELBAccessLogTestFile"),
    ],
    ids=[
        "test-event",
        "sns-test-event",
        "elb-test-file",
        "sns-elb-test-file",
        "removed",
        "eb-deleted",
        "eb-test-file",
    ],
)
def test_ignored_quietly(event: dict[str, Any]) -> None:
    parsed = parse_event(event)
    assert parsed.objects == ()
    assert len(parsed.messages[0].skipped) == 1


def test_sqs_test_event_is_a_success_with_nothing_to_do() -> None:
    parsed = parse_event(sqs_event(json.dumps(TEST_EVENT)))
    assert parsed.messages[0].error is None
    assert parsed.messages[0].objects == ()


def test_etag_quotes_are_stripped() -> None:
    assert parse_event(s3_event(s3_record(etag='"abc"'))).objects[0].etag == "abc"


@pytest.mark.parametrize(
    "event",
    [
        [],
        "Records",
        {},
        {"Records": [{"eventSource": "aws:dynamodb"}]},
        {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {}}}]},
        {"detail-type": "Object Created", "source": "aws.ec2", "detail": {}},
        sns_event({"unexpected": True}),
    ],
)
def test_unknown_shapes_raise(event: Any) -> None:
    with pytest.raises(EventError):
        parse_event(event)


def test_sns_message_that_is_not_json_raises() -> None:
    event = sns_event({})
    event["Records"][0]["Sns"]["Message"] = "Hello from SNS!"
    with pytest.raises(EventError, match=r"Sns\.Message is not JSON"):
        parse_event(event)


def destination_record(original: dict) -> dict:
    """What Lambda sends to the on-failure destination after the retries of an async invocation."""
    return {
        "version": "1.0",
        "timestamp": "2025-03-14T09:41:07.568Z",
        "requestContext": {
            "requestId": "e4b46cbf-b738-4c2f-8880-a18cdf61200e",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:onboarding-forwarder:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": original,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {
            "errorMessage": "https://logs.example.com/in: HTTP 503 Service Unavailable; gave up",
            "errorType": "TransientDeliveryError",
            "requestId": "e4b46cbf-b738-4c2f-8880-a18cdf61200e",
            "stackTrace": [],
        },
    }


def test_dead_letter_record_invoked_directly_is_redriven() -> None:
    parsed = parse_event(destination_record(sns_event(s3_event(s3_record()))))
    assert parsed.source == "redrive"
    assert [o.key for o in parsed.objects] == [KEY]


def test_dead_letter_queue_as_an_sqs_source() -> None:
    record = destination_record(sns_event(s3_event(s3_record()), s3_event(s3_record(KEY + ".b"))))
    parsed = parse_event(sqs_event(json.dumps(record)))
    assert parsed.source == "sqs"
    assert [o.key for o in parsed.messages[0].objects] == [KEY, KEY + ".b"]
