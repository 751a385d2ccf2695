"""`python -m forwarder redrive`: dead-letter records in moto SQS are handed back to the forwarder function.

moto cannot run the function (no Docker) and does not keep what an invocation carried, so the Invoke
calls are recorded on the way out of boto3 (a botocore ``before-call`` hook on the real client); the
recorded payloads are then run through the real forwarder handler against the loopback receiver.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from alb_log_factory import ACCOUNT, REGION, gzip_lines, log_key
from aws_events import (
    BUCKET,
    FUNCTION_NAME,
    FakeContext,
    Stored,
    destination_record,
    s3_notification,
    sns_event,
)
from botocore.exceptions import ClientError
from ingest_server import IngestServer
from moto import mock_aws

from forwarder import handler
from forwarder import redrive as redrive_module
from forwarder.cli import main
from forwarder.records import record_event_id
from forwarder.redrive import RedriveError, read_dead_letter, redrive
from forwarder.work import WorkItem

pytest_plugins = ["conftest_forwarder"]

ERROR = "s3.example: HTTP 503 Service Unavailable; gave up after 6 retries (HTTP_MAX_RETRIES=6) (7 attempts)"


class Account:
    """moto with its Docker-free Lambda: the dead-letter queue, the forwarder function, the log bucket."""

    def __init__(self) -> None:
        self.session = boto3.Session(region_name=REGION)
        self.sqs = self.session.client("sqs")
        self.s3 = self.session.client("s3")
        self.lambda_client = self.session.client("lambda")
        self.invocations: list[dict[str, Any]] = []
        self.lambda_client.meta.events.register("before-call.lambda.Invoke", self._record)
        self.queue_url = self.sqs.create_queue(QueueName="onboarding-ForwarderDeadLetterQueue-1A2B3C")[
            "QueueUrl"
        ]
        role = self.session.client("iam").create_role(
            RoleName="onboarding-ForwarderRole",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        self.function_arn = self.lambda_client.create_function(
            FunctionName=FUNCTION_NAME,
            Runtime="python3.12",
            Role=role,
            Handler="forwarder.handler.handler",
            Code={"ZipFile": _zip()},
        )["FunctionArn"]
        self.s3.create_bucket(Bucket=BUCKET)

    def _record(self, params: dict[str, Any], **kwargs: Any) -> None:
        # The request as serialized for the wire: Invoke's type travels in a header, the event as the body.
        self.invocations.append(
            {
                "InvocationType": params["headers"].get("X-Amz-Invocation-Type"),
                "FunctionName": unquote(params["url_path"].split("/")[3]),
                "Payload": json.loads(params["body"]),
            }
        )

    def payloads(self) -> list[Any]:
        return [call["Payload"] for call in self.invocations]

    def put_log(self, key: str, lines: list[str]) -> Stored:
        body = gzip_lines(lines)  # a .log.gz key holds gzip, as the load balancer writes it
        etag = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')
        return Stored(BUCKET, key, etag, len(body), tuple(lines))

    def dead_letter(self, body: dict[str, Any] | str) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=text)

    def queued(self) -> list[dict[str, Any]]:
        """Messages visible right now (received with a zero visibility timeout, so nothing changes)."""
        found: dict[str, dict[str, Any]] = {}
        for _ in range(3):
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
            )
            for message in response.get("Messages", []):
                found[message["MessageId"]] = message
        return list(found.values())


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("forwarder/handler.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


@pytest.fixture
def account(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    with mock_aws(config={"lambda": {"use_docker": False}}):
        built = Account()
        # The command builds its own clients with boto3.client(): hand it the recording ones.
        clients = {"sqs": built.sqs, "lambda": built.lambda_client}
        monkeypatch.setattr(
            redrive_module, "boto3", SimpleNamespace(client=lambda name, **kwargs: clients[name])
        )
        yield built


def failed_event(account: Account, number: int) -> tuple[Stored, dict[str, Any]]:
    """A log file and the SNS event that failed for it."""
    obj = account.put_log(
        log_key(prefix="prod", suffix=f"node{number}"), [f"line {number}.{n}" for n in range(3)]
    )
    return obj, sns_event(s3_notification(obj))


def run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(["redrive", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def run_queue(
    account: Account, *extra: str, function: str = FUNCTION_NAME, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """`redrive` on the test queue without waiting for more messages."""
    return run(
        "--queue-url",
        account.queue_url,
        "--function-name",
        function,
        "--wait-seconds",
        "0",
        *extra,
        capsys=capsys,
    )


def test_dead_letters_are_invoked_again_with_the_original_event_and_deleted(
    account: Account,
    capsys: pytest.CaptureFixture[str],
    forwarder_env: Any,
    ingest: IngestServer,
    sleeps: Any,
) -> None:
    stored = []
    for number in range(3):
        obj, event = failed_event(account, number)
        stored.append(obj)
        account.dead_letter(
            destination_record(event, error_type="TransientDeliveryError", error_message=ERROR)
        )

    status, out, _ = run_queue(account, capsys=capsys)

    assert status == 0
    assert [call["InvocationType"] for call in account.invocations] == ["Event"] * 3
    assert [call["FunctionName"] for call in account.invocations] == [FUNCTION_NAME] * 3
    payloads = account.payloads()
    assert sorted(p["Records"][0]["Sns"]["Message"] for p in payloads) == sorted(
        json.dumps(s3_notification(obj)) for obj in stored
    )
    assert account.queued() == []
    assert "3 redriven" in out
    assert f"s3://{BUCKET}/{stored[0].key}" in out

    # What the function receives is what SNS sent the first time: the forwarder now delivers it.
    for payload in payloads:
        handler.handler(payload, FakeContext())
    assert sorted(ingest.event_ids()) == sorted(
        record_event_id(obj.bucket, obj.key, obj.etag, n) for obj in stored for n in (1, 2, 3)
    )


def test_dry_run_invokes_nothing_and_leaves_every_message_visible(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    obj, event = failed_event(account, 1)
    account.dead_letter(destination_record(event, error_type="TransientDeliveryError", error_message=ERROR))
    account.dead_letter(destination_record(failed_event(account, 2)[1], error_type="E", error_message="boom"))

    status, out, _ = run_queue(account, "--dry-run", capsys=capsys)

    assert status == 0
    assert account.invocations == []
    # Visible again at once, not after the hold.
    assert len(account.queued()) == 2
    line = next(line for line in out.splitlines() if obj.key in line)
    assert line.startswith("would redrive ")
    assert "RetriesExhausted after 3 attempts: TransientDeliveryError: s3.example: HTTP 503" in line
    assert "2 would be redriven" in out


def test_messages_that_cannot_be_redriven_stay_in_the_queue(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    _, good = failed_event(account, 1)
    account.dead_letter(destination_record(good, error_type="E", error_message="boom"))
    too_large = destination_record(failed_event(account, 2)[1], error_type="E", error_message="boom")
    del too_large["requestPayload"]  # Lambda leaves it out when the record is too large for the queue
    account.dead_letter(too_large)
    account.dead_letter("not json at all")

    status, out, _ = run_queue(account, capsys=capsys)

    assert status == 1
    assert len(account.invocations) == 1
    kept = account.queued()
    assert sorted(m["Body"][:8] for m in kept) == sorted([json.dumps(too_large)[:8], "not json"])
    assert "no requestPayload" in out and too_large["requestContext"]["requestId"] in out
    assert "1 redriven" in out and "2 cannot be redriven" in out


def test_a_classic_dead_letter_queue_body_is_the_event_itself(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    _, event = failed_event(account, 1)
    account.dead_letter(event)

    status, _, _ = run_queue(account, capsys=capsys)

    assert status == 0
    assert account.payloads() == [event]
    assert account.queued() == []


def test_max_limits_how_many_messages_are_handled(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    for number in range(3):
        account.dead_letter(
            destination_record(failed_event(account, number)[1], error_type="E", error_message="x")
        )

    status, _, _ = run_queue(account, "--max", "2", function=account.function_arn, capsys=capsys)

    assert status == 0
    assert len(account.invocations) == 2
    assert len(account.queued()) == 1


def test_a_refused_invocation_keeps_the_message(account: Account) -> None:
    account.dead_letter(destination_record(failed_event(account, 1)[1], error_type="E", error_message="x"))

    class Throttled:
        def invoke(self, **kwargs: Any) -> Any:
            raise ClientError(
                {"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}}, "Invoke"
            )

    out = io.StringIO()
    summary = redrive(
        account.sqs,
        Throttled(),
        queue_url=account.queue_url,
        function_name=FUNCTION_NAME,
        out=out,
        wait_seconds=0,
    )

    assert (summary.redriven, summary.failed) == (0, 1)
    assert "TooManyRequestsException" in out.getvalue()
    assert len(account.queued()) == 1


def test_unknown_function_fails_before_touching_the_queue(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    account.dead_letter(destination_record(failed_event(account, 1)[1], error_type="E", error_message="x"))

    status, _, err = run_queue(account, function="no-such-function", capsys=capsys)

    assert status == 2
    assert "function no-such-function does not exist" in err
    assert account.invocations == []
    assert len(account.queued()) == 1


def test_an_invoke_error_that_would_repeat_stops_the_run_and_releases_the_message(account: Account) -> None:
    account.dead_letter(destination_record(failed_event(account, 1)[1], error_type="E", error_message="x"))

    class Denied:
        def invoke(self, **kwargs: Any) -> Any:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "Invoke"
            )

    with pytest.raises(RedriveError, match="lambda:InvokeFunction"):
        redrive(
            account.sqs, Denied(), queue_url=account.queue_url, function_name=FUNCTION_NAME, wait_seconds=0
        )
    assert len(account.queued()) == 1


def test_missing_queue_exits_2(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/no-such-queue"
    status, _, err = run("--queue-url", url, "--function-name", FUNCTION_NAME, capsys=capsys)
    assert status == 2
    assert "does not exist" in err and "DeadLetterQueueUrl" in err


# --- reading one message (pure) --------------------------------------------------------------------------


def test_read_dead_letter_takes_the_event_and_the_error_from_a_destination_record() -> None:
    obj = Stored(BUCKET, log_key(prefix="prod"), "abc", 10, ())
    event = sns_event(s3_notification(obj))
    record = destination_record(
        event, error_type="PermanentDeliveryError", error_message="HTTP 401\nUnauthorized"
    )
    dead = read_dead_letter({"MessageId": "m1", "ReceiptHandle": "r1", "Body": json.dumps(record)})

    assert dead.problem is None
    assert dead.payload == event
    assert dead.objects == (f"s3://{BUCKET}/{obj.key}",)
    assert (dead.condition, dead.attempts) == ("RetriesExhausted", 3)
    assert dead.error == "PermanentDeliveryError: HTTP 401 Unauthorized"  # control characters flattened


def test_read_dead_letter_resumes_a_work_item_the_work_queue_gave_up_on_at_its_line() -> None:
    """The work queue's redrive policy moves the item as it is: the body is the work item."""
    item = WorkItem(bucket=BUCKET, key=log_key(prefix="prod"), etag="abc", start_line=40_001, invocation=3)
    dead = read_dead_letter({"MessageId": "m1", "ReceiptHandle": "r1", "Body": item.to_body()})
    assert dead.problem is None
    assert dead.payload == json.loads(item.to_body())
    assert dead.describe() == f"s3://{BUCKET}/{item.key} from line 40001 (invocation 3)"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("[1, 2]", "not a JSON object"),
        ("{", "not JSON"),
        (json.dumps({"hello": "world"}), "not one the forwarder understands"),
        (
            json.dumps({"requestContext": {"requestId": str(uuid.uuid4())}, "requestPayload": {"x": 1}}),
            "not one the forwarder understands",
        ),
    ],
)
def test_read_dead_letter_explains_what_it_cannot_redrive(body: str, problem: str) -> None:
    dead = read_dead_letter({"MessageId": "m1", "ReceiptHandle": "r1", "Body": body})
    assert dead.problem is not None
    assert problem in dead.problem
