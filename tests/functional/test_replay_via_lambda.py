"""`python -m forwarder replay --via-lambda`: work items onto a moto work queue, resuming, the watch, errors,
the dry-run estimate, and a backfill of many objects through the queue to the forwarder handler.

The stack is a small moto CloudFormation stack with the outputs and parameters the command reads (the two
queues, the log bucket and prefix, the function ARN, memory, timeout, concurrency), so DescribeStacks
answers exactly as it does for the real one.
"""

from __future__ import annotations

import io
import json
import os
import signal
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from alb_log_factory import ACCOUNT, REGION, log_key
from aws_events import BUCKET, Stored, s3_notification, sns_event, sqs_event_from
from botocore.exceptions import ClientError
from ingest_server import IngestServer

from forwarder import replay, sizing
from forwarder.cli import _build_parser, main
from forwarder.progress import format_duration
from forwarder.records import record_event_id
from forwarder.work import WorkItem

pytest_plugins = ["conftest_forwarder"]

PREFIX = "prod"
START = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
STACK = "onboarding"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:onboarding-forwarder"
# As templates/onboarding.yaml sets the work queue and its event source mapping.
VISIBILITY_TIMEOUT = 5400
MAX_RECEIVE_COUNT = 5
MAPPING_BATCH_SIZE = 1


def stack_template(*, work_queue: bool = True) -> str:
    """The outputs and parameters of the onboarding stack that replay --via-lambda reads."""
    resources: dict[str, Any] = {
        "ForwarderDeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": "onboarding-dlq"},
        },
    }
    outputs: dict[str, Any] = {
        "LogBucketName": {"Value": BUCKET},
        "LogPrefix": {"Value": PREFIX},
        "ForwarderFunctionArn": {"Value": FUNCTION_ARN},
        "DeadLetterQueueUrl": {"Value": {"Ref": "ForwarderDeadLetterQueue"}},
    }
    if work_queue:
        resources["WorkQueue"] = {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": "onboarding-work",
                "VisibilityTimeout": VISIBILITY_TIMEOUT,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["ForwarderDeadLetterQueue", "Arn"]},
                    "maxReceiveCount": MAX_RECEIVE_COUNT,
                },
            },
        }
        outputs["WorkQueueUrl"] = {"Value": {"Ref": "WorkQueue"}}
    return json.dumps(
        {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Parameters": {
                "ForwarderMemorySize": {"Type": "Number", "Default": 1024},
                "ForwarderTimeout": {"Type": "Number", "Default": 300},
                "WorkQueueMaxConcurrency": {"Type": "Number", "Default": 20},
            },
            "Resources": resources,
            "Outputs": outputs,
        }
    )


class Stack:
    """The moto stack and its queues."""

    def __init__(self, *, work_queue: bool = True, name: str = STACK) -> None:
        self.name = name
        self.sqs = boto3.client("sqs", region_name=REGION)
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(StackName=name, TemplateBody=stack_template(work_queue=work_queue))
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in cloudformation.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
        }
        self.work_queue_url = outputs.get("WorkQueueUrl", "")
        self.dead_letter_queue_url = outputs["DeadLetterQueueUrl"]

    def count(self, url: str | None = None) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url or self.work_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def take(self, url: str | None = None) -> list[WorkItem]:
        """Receive and delete every message; the work items they hold, in the order received."""
        found: list[WorkItem] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=url or self.work_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60
            ).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(WorkItem.from_body(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=url or self.work_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture
def stack(aws: None, s3: Any) -> Stack:
    return Stack()


class Clock:
    """The run's clock and sleep: sleeping moves the clock and plays ``while_asleep`` (the functions)."""

    def __init__(self) -> None:
        self.now = 5000.0
        self.slept: list[float] = []
        self.while_asleep: Callable[[], None] = lambda: None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        self.while_asleep()


class Backfill:
    """``backfill(*args) -> (status, stdout, stderr)`` for `replay s3://BUCKET/prod/ --via-lambda ...`."""

    def __init__(self, state_file: Path, clock: Clock) -> None:
        self.state_file = state_file
        self.clock = clock

    def __call__(self, *args: str, url: str = f"s3://{BUCKET}/{PREFIX}/") -> tuple[int, str, str]:
        parsed = _build_parser().parse_args(
            ["replay", url, "--via-lambda", "--state-file", str(self.state_file), *args]
        )
        out, err = io.StringIO(), io.StringIO()
        status = replay.run_command(parsed, out=out, err=err, clock=self.clock, sleep=self.clock.sleep)
        return status, out.getvalue(), err.getvalue()

    def state(self) -> dict[str, Any]:
        return dict(json.loads(self.state_file.read_text()))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def backfill(tmp_path: Path, clock: Clock) -> Backfill:
    return Backfill(tmp_path / "replay-state.json", clock)


def put_files(put_log: Any, count: int, *, lines: int = 3) -> list[Stored]:
    """``count`` ALB log files, 5 minutes apart, in key order; file n has ``lines + n % 7`` lines."""
    return [
        put_log(
            log_key(prefix=PREFIX, when=START + timedelta(minutes=5 * n), suffix=f"n{n:03d}"),
            count=lines + n % 7,
            seed=n + 1,
        )
        for n in range(count)
    ]


def items_of(files: list[Stored]) -> list[WorkItem]:
    return [WorkItem(bucket=f.bucket, key=f.key, etag=f.etag) for f in files]


class WrappedSqs:
    """The real (moto) SQS client, with SendMessageBatch passing through ``send`` first."""

    def __init__(self, client: Any, send: Callable[..., Any]) -> None:
        self._client = client
        self._send = send
        self.batches = 0

    def send_message_batch(self, **kwargs: Any) -> Any:
        self.batches += 1
        return self._send(self._client, self.batches, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def wrap_sqs(monkeypatch: pytest.MonkeyPatch, send: Callable[..., Any]) -> list[WrappedSqs]:
    """Make replay's SQS clients WrappedSqs around the real ones; returns the clients made."""
    real = replay._client
    made: list[WrappedSqs] = []

    def client(name: str, *, region: str | None = None) -> Any:
        created = real(name, region=region)
        if name != "sqs":
            return created
        made.append(WrappedSqs(created, send))
        return made[-1]

    monkeypatch.setattr(replay, "_client", client)
    return made


# --- enqueueing ------------------------------------------------------------------------------------------


def test_one_work_item_per_log_file_goes_to_the_stacks_work_queue(
    backfill: Backfill, stack: Stack, put_log: Any
) -> None:
    files = put_files(put_log, 12)
    put_log(f"{PREFIX}/AWSLogs/{ACCOUNT}/ELBAccessLogTestFile", body=b"Enable AccessLog for ELB: x")

    status, out, err = backfill("--stack", STACK, "--no-wait")

    assert status == 0, err
    assert stack.take() == items_of(files)  # in key order, each once, starting at line 1
    assert f"backfill of s3://{BUCKET}/{PREFIX}/ via stack {STACK}: 12 files enqueued" in out
    assert "1 skipped (not log files)" in out
    progress = [line for line in err.splitlines() if line.startswith("[")]
    assert progress[0].startswith(f"[1/12] enqueued s3://{BUCKET}/{files[0].key} (")
    assert len(progress) == 12
    state = backfill.state()
    assert state["enqueued"] == {f.key: f.etag for f in files}
    assert state["work_queue"] == stack.work_queue_url
    assert state["totals"]["enqueued"] == 12
    assert state["objects"] == {}  # nothing was delivered from here


def test_an_interrupted_run_resumes_with_the_files_not_yet_enqueued(
    backfill: Backfill, stack: Stack, put_log: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = put_files(put_log, 45)
    recorded_before_third: list[int] = []

    def ctrl_c_at_third_batch(client: Any, number: int, **kwargs: Any) -> Any:
        if number == 3:
            # What a kill -9 at this moment would leave: the state as saved after batch 2.
            recorded_before_third.append(len(backfill.state()["enqueued"]))
            raise KeyboardInterrupt
        return client.send_message_batch(**kwargs)

    with monkeypatch.context() as patch:
        wrap_sqs(patch, ctrl_c_at_third_batch)
        status, out, err = backfill("--stack", STACK, "--no-wait")

    assert status == 130
    assert "run the same command again to enqueue the rest" in err
    assert "20 files enqueued" in out
    assert recorded_before_third == [20]  # saved after every batch
    assert set(backfill.state()["enqueued"]) == {f.key for f in files[:20]}
    assert stack.count() == 20

    status, out, _ = backfill("--stack", STACK, "--no-wait")

    assert status == 0
    assert "25 files enqueued, 0 skipped (already delivered), 20 skipped (already enqueued)" in out
    assert Counter(stack.take()) == Counter(items_of(files))  # every file exactly once
    assert len(backfill.state()["enqueued"]) == 45

    status, out, err = backfill("--stack", STACK, "--no-wait")
    assert status == 0
    assert "nothing to enqueue: skipped: 0 already delivered, 45 already enqueued" in err
    assert stack.count() == 0


def test_ctrl_c_during_a_batch_lets_it_finish_and_be_recorded(
    backfill: Backfill, stack: Stack, put_log: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = put_files(put_log, 45)

    def sigint_while_sending_third_batch(client: Any, number: int, **kwargs: Any) -> Any:
        if number == 3:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, while the batch is on its way
        return client.send_message_batch(**kwargs)

    with monkeypatch.context() as patch:
        wrap_sqs(patch, sigint_while_sending_third_batch)
        status, out, _ = backfill("--stack", STACK, "--no-wait")

    assert status == 130
    assert "30 files enqueued" in out
    assert set(backfill.state()["enqueued"]) == {f.key for f in files[:30]}  # the third batch too
    assert Counter(stack.take()) == Counter(items_of(files[:30]))


def test_a_queue_that_stops_taking_messages_ends_the_run_with_what_was_enqueued_recorded(
    backfill: Backfill, stack: Stack, put_log: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = put_files(put_log, 25)

    def throttled_from_the_second_batch(client: Any, number: int, **kwargs: Any) -> Any:
        if number >= 2:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "SendMessageBatch"
            )
        return client.send_message_batch(**kwargs)

    with monkeypatch.context() as patch:
        wrap_sqs(patch, throttled_from_the_second_batch)
        status, out, err = backfill("--stack", STACK, "--no-wait")

    assert status == 1
    assert "error: cannot use the work queue" in err and "ThrottlingException: slow down" in err
    assert "run the same command again to enqueue the rest" in err
    assert "10 files enqueued" in out
    assert set(backfill.state()["enqueued"]) == {f.key for f in files[:10]}

    assert backfill("--stack", STACK, "--no-wait")[0] == 0
    assert Counter(stack.take()) == Counter(items_of(files))


def test_a_plain_replay_with_the_same_state_file_skips_what_was_enqueued(
    backfill: Backfill,
    stack: Stack,
    put_log: Any,
    ingest: IngestServer,
    *,
    forwarder_env: Callable[..., None],
    sleeps: list[float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = put_files(put_log, 4)
    assert backfill("--stack", STACK, "--no-wait")[0] == 0
    extra = put_log(log_key(prefix=PREFIX, when=START + timedelta(hours=1), suffix="late"), count=2)

    status = main(["replay", f"s3://{BUCKET}/{PREFIX}/", "--state-file", str(backfill.state_file)])

    assert status == 0
    assert (
        "1 file sent, 0 skipped (already delivered), 4 skipped (already enqueued)" in capsys.readouterr().out
    )
    assert {str(r["s3_key"]) for r in ingest.records()} == {extra.key}
    state = backfill.state()
    assert set(state["objects"]) == {extra.key}
    assert set(state["enqueued"]) == {f.key for f in files}  # kept by the plain run


def test_a_changed_object_is_enqueued_again(backfill: Backfill, stack: Stack, put_log: Any) -> None:
    files = put_files(put_log, 3)
    assert backfill("--stack", STACK, "--no-wait")[0] == 0
    stack.take()

    changed = put_log(files[1].key, count=9, seed=99)
    status, out, _ = backfill("--stack", STACK, "--no-wait")

    assert status == 0
    assert stack.take() == items_of([changed])
    assert "1 file enqueued" in out


def test_entries_the_queue_fails_are_sent_again_and_refused_ones_reported(
    backfill: Backfill, stack: Stack, put_log: Any, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    files = put_files(put_log, 14)
    flaky = {files[2].key, files[11].key}  # one in each batch, failed the first time only
    refused = files[5].key
    attempts: Counter[str] = Counter()

    def partial_failures(client: Any, number: int, *, QueueUrl: str, Entries: list[Any]) -> Any:
        keep, failed = [], []
        for entry in Entries:
            key = json.loads(entry["MessageBody"])["forwarder_work"]["key"]
            attempts[key] += 1
            if key == refused:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": "InvalidMessageContents"})
            elif key in flaky and attempts[key] == 1:
                failed.append({"Id": entry["Id"], "SenderFault": False, "Code": "InternalError"})
            else:
                keep.append(entry)
        response = client.send_message_batch(QueueUrl=QueueUrl, Entries=keep) if keep else {}
        return {"Successful": response.get("Successful", []), "Failed": failed}

    with monkeypatch.context() as patch:
        wrap_sqs(patch, partial_failures)
        status, out, err = backfill("--stack", STACK, "--no-wait")

    assert status == 1
    assert "13 files enqueued" in out and "1 failed" in out
    assert f"s3://{BUCKET}/{refused}: the queue refused it (InvalidMessageContents)" in out
    assert f"FAILED s3://{BUCKET}/{refused}" in err
    assert "(2 items sent again after the queue failed them)" in out
    assert clock.slept == [0.5, 0.5]  # each batch's flaky entry, sent again once
    assert Counter(stack.take()) == Counter(items_of([f for f in files if f.key != refused]))
    assert refused not in backfill.state()["enqueued"]

    status, out, _ = backfill("--stack", STACK, "--no-wait")
    assert status == 0
    assert stack.take() == items_of([files[5]])


def test_a_queue_url_in_another_region_is_used_in_its_region(
    backfill: Backfill, s3: Any, put_log: Any
) -> None:
    files = put_files(put_log, 2)
    elsewhere = boto3.client("sqs", region_name="eu-west-1")
    url = elsewhere.create_queue(QueueName="onboarding-work")["QueueUrl"]
    assert "eu-west-1" in url

    status, out, err = backfill("--queue-url", url, "--no-wait")

    assert status == 0, err
    assert "via --queue-url" in out
    messages = elsewhere.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(WorkItem.from_body(m["Body"]).key for m in messages) == [f.key for f in files]


def test_a_state_file_of_another_work_queue_is_refused(
    backfill: Backfill, stack: Stack, put_log: Any
) -> None:
    put_files(put_log, 2)
    assert backfill("--stack", STACK, "--no-wait")[0] == 0
    other = stack.sqs.create_queue(QueueName="another-work")["QueueUrl"]

    status, _, err = backfill("--queue-url", other, "--no-wait")

    assert status == 2
    assert f"records 2 files enqueued to {stack.work_queue_url}, not {other}" in err
    assert (
        stack.sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["All"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "0"
    )


def test_files_the_forwarder_may_not_read_are_warned_of(
    backfill: Backfill, stack: Stack, put_log: Any
) -> None:
    put_files(put_log, 1)
    put_log(f"{PREFIX}/exports/copied-by-hand.log.gz", count=2)

    status, _, err = backfill("--stack", STACK, "--no-wait")

    assert status == 0
    assert (
        f"warning: 1 file (e.g. s3://{BUCKET}/{PREFIX}/exports/copied-by-hand.log.gz) outside "
        f"s3://{BUCKET}/{PREFIX}/AWSLogs/{ACCOUNT}/, the only log files the forwarder of stack {STACK} "
        "may read"
    ) in err


# --- watching the queue drain ----------------------------------------------------------------------------


def play_functions(stack: Stack, *, fail: set[str] = frozenset()) -> Callable[[], None]:  # type: ignore[assignment]
    """Take up to 10 work items a reading; the ones for keys in ``fail`` go to the dead-letter queue, as
    the queue's redrive policy does after the last receive."""

    def work() -> None:
        messages = stack.sqs.receive_message(QueueUrl=stack.work_queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        for message in messages:
            if WorkItem.from_body(message["Body"]).key in fail:
                stack.sqs.send_message(QueueUrl=stack.dead_letter_queue_url, MessageBody=message["Body"])
            stack.sqs.delete_message(QueueUrl=stack.work_queue_url, ReceiptHandle=message["ReceiptHandle"])

    return work


def test_the_watch_ends_when_the_queue_is_empty(
    backfill: Backfill, stack: Stack, put_log: Any, clock: Clock
) -> None:
    put_files(put_log, 25)
    clock.while_asleep = play_functions(stack)

    status, out, err = backfill("--stack", STACK, "--poll-seconds", "20")

    assert status == 0, out + err
    readings = [line for line in err.splitlines() if line.startswith("[") and "work queue:" in line]
    assert readings[0] == "[0s] work queue: 25 waiting, 0 in flight; dead-letter queue: 0 messages"
    assert readings[1] == "[20s] work queue: 15 waiting, 0 in flight; dead-letter queue: 0 messages"
    # Empty at 60 s, and a minute later still: drained.
    assert readings[-1] == "[2m00s] work queue: 0 waiting, 0 in flight; dead-letter queue: 0 messages"
    assert "work queue drained after 2m00s" in out
    assert "dead-letter queue: empty" in out
    assert set(clock.slept) == {20}


def test_the_watch_reports_dead_letters_with_the_redrive_command(
    backfill: Backfill, stack: Stack, put_log: Any, clock: Clock
) -> None:
    files = put_files(put_log, 12)
    clock.while_asleep = play_functions(stack, fail={files[4].key})

    status, out, _ = backfill("--stack", STACK)

    assert status == 1
    assert "work queue drained after" in out
    assert "dead-letter queue: 1 message (1 new since the watch began)" in out
    redrive = f"redrive --queue-url {stack.dead_letter_queue_url} --function-name {FUNCTION_ARN}"
    assert f"  python -m forwarder {redrive}" in out.splitlines()


def test_the_watch_stops_at_its_limit_and_says_how_to_watch_again(
    backfill: Backfill, stack: Stack, put_log: Any, clock: Clock
) -> None:
    put_files(put_log, 3)  # nobody takes them

    status, out, _ = backfill("--stack", STACK, "--watch-timeout", "90")

    assert status == 1
    assert (
        "still queued when the watch stopped after 1m30s: work queue: 3 waiting, 0 in flight; the forwarder "
        "goes on: run the same command again to watch"
    ) in out
    assert clock.now - 5000.0 == 90


def test_ctrl_c_while_watching_leaves_the_queue_to_the_functions(
    backfill: Backfill, stack: Stack, put_log: Any, clock: Clock
) -> None:
    put_files(put_log, 3)

    def ctrl_c() -> None:
        raise KeyboardInterrupt

    clock.while_asleep = ctrl_c
    status, out, err = backfill("--stack", STACK)

    assert status == 130
    assert "3 files enqueued" in out
    assert "stopped watching: the forwarder goes on with what is queued" in err
    assert stack.count() == 3
    assert len(backfill.state()["enqueued"]) == 3


def test_the_dead_letter_queue_of_a_queue_url_comes_from_its_redrive_policy(
    backfill: Backfill, stack: Stack, put_log: Any, clock: Clock
) -> None:
    files = put_files(put_log, 2)
    clock.while_asleep = play_functions(stack, fail={files[0].key})

    status, out, _ = backfill("--queue-url", stack.work_queue_url)

    assert status == 1
    assert "dead-letter queue: 1 message (1 new since the watch began)" in out
    assert f"redrive --queue-url {stack.dead_letter_queue_url} --function-name <ForwarderFunctionArn>" in out


# What each call needs: SendMessageBatch is authorised as sqs:SendMessage, ListObjectsV2 as s3:ListBucket.
IAM_ACTION = {
    ("cloudformation", "DescribeStacks"): "cloudformation:DescribeStacks",
    ("sqs", "GetQueueAttributes"): "sqs:GetQueueAttributes",
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
}


def readme_backfill_policy() -> dict[str, set[str]]:
    """The policy of the README's "Backfill on Lambda" part: action -> the resources it is granted on."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    part = readme.split("### Backfill on Lambda", 1)[1].split("\n### ", 1)[0]
    policy = json.loads(part.split("```json", 1)[1].split("```", 1)[0])
    granted: dict[str, set[str]] = {}
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            granted.setdefault(action, set()).add(statement["Resource"])
    return granted


def test_the_readme_policy_grants_every_call_a_run_makes_on_the_resource_it_makes_it_on(
    backfill: Backfill, stack: Stack, put_log: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_files(put_log, 12)
    clock.while_asleep = play_functions(stack)
    calls: set[tuple[str, str, str]] = set()
    real = replay._client

    def recording_client(name: str, *, region: str | None = None) -> Any:
        client = real(name, region=region)

        def record(params: dict[str, Any], model: Any, **kwargs: Any) -> None:
            # The call's own parameters, before botocore serialises them.
            resource = params.get("QueueUrl") or params.get("StackName") or params.get("Bucket")
            calls.add((name, model.name, str(resource)))

        client.meta.events.register("before-parameter-build", record)
        return client

    monkeypatch.setattr(replay, "_client", recording_client)
    assert backfill("--stack", STACK)[0] == 0

    placeholders = {
        "<WorkQueueArn>": stack.work_queue_url,
        "<DeadLetterQueueArn>": stack.dead_letter_queue_url,
        "arn:aws:cloudformation:<region>:<account>:stack/<stack name>/*": STACK,
        "arn:aws:s3:::<LogBucketName>": BUCKET,
    }
    granted = {
        action: {placeholders[resource] for resource in resources}
        for action, resources in readme_backfill_policy().items()
    }
    needed = {(IAM_ACTION[(service, operation)], resource) for service, operation, resource in calls}
    assert {action for action, _ in needed} == set(granted)  # nothing missing, nothing granted in vain
    for action, resource in needed:
        assert resource in granted[action], (action, resource)


# --- dry run ---------------------------------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_the_models_estimate_at_the_stacks_settings(
    backfill: Backfill, stack: Stack, put_log: Any
) -> None:
    files = put_files(put_log, 8)
    total = sum(f.size for f in files)

    status, out, _ = backfill("--stack", STACK, "--dry-run")

    assert status == 0
    assert stack.count() == 0
    assert not backfill.state_file.exists()
    assert [line.rsplit(" ", 1)[-1] for line in out.splitlines() if "  s3://" in line] == [
        f"s3://{BUCKET}/{f.key}" for f in files
    ]
    assert "would enqueue 8 files" in out
    lines = sizing.lines_in(total)
    model = sizing.estimate(lines=lines, objects=8, memory_mb=1024, concurrency=20, timeout_seconds=300)
    assert f"about {lines:,} lines" in out
    assert (
        "at 1024 MB (0.58 vCPU, stack parameter ForwarderMemorySize) and concurrency 20 (stack parameter "
        f"WorkQueueMaxConcurrency): function time {format_duration(model.function_seconds)}, wall time "
        f"{format_duration(model.wall_seconds)}, 8 invocations, cost USD {model.cost_usd:.4f}"
    ) in out
    assert sizing.PRICING_SOURCE in out and sizing.CPU_SOURCE in out
    assert out.splitlines()[-1] == "dry run: nothing was enqueued and the state file was not written"


def test_dry_run_options_override_the_stack_and_need_no_stack(
    backfill: Backfill, s3: Any, put_log: Any
) -> None:
    put_files(put_log, 2)

    status, out, _ = backfill("--dry-run", "--concurrency", "3", "--memory-mb", "1769")

    assert status == 0
    assert "at 1769 MB (1.00 vCPU, --memory-mb) and concurrency 3 (--concurrency)" in out

    status, out, _ = backfill("--dry-run")
    assert "at 1024 MB (0.58 vCPU, default) and concurrency 5 (default)" in out


def test_dry_run_on_a_stack_without_the_work_queue_warns_and_still_estimates(
    backfill: Backfill, aws: None, s3: Any, put_log: Any
) -> None:
    Stack(work_queue=False)
    put_files(put_log, 2)

    status, out, err = backfill("--stack", STACK, "--dry-run")

    assert status == 0
    assert "warning: stack onboarding has no output WorkQueueUrl" in err
    assert "estimate on Lambda: 2 objects" in out


# --- errors ----------------------------------------------------------------------------------------------


def test_a_stack_without_the_work_queue_output_must_be_updated(
    backfill: Backfill, aws: None, s3: Any, put_log: Any
) -> None:
    Stack(work_queue=False)
    put_files(put_log, 2)

    status, _, err = backfill("--stack", STACK)

    assert status == 2
    assert "stack onboarding has no output WorkQueueUrl: it predates the work queue" in err
    assert "update the stack with the current template" in err
    assert not backfill.state_file.exists()


def test_a_missing_stack_names_the_region(backfill: Backfill, s3: Any) -> None:
    status, _, err = backfill("--stack", "no-such-stack")
    assert status == 2
    assert f"stack no-such-stack not found in {REGION}; check the name, and set AWS_REGION" in err


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("onboarding-work", "not an SQS queue URL for the work queue"),
        (f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/no-such-queue", "does not exist"),
    ],
)
def test_a_bad_queue_url_exits_2(backfill: Backfill, s3: Any, put_log: Any, url: str, words: str) -> None:
    put_files(put_log, 1)
    status, _, err = backfill("--queue-url", url)
    assert status == 2
    assert words in err


def test_access_denied_on_the_work_queue_names_the_permission(
    backfill: Backfill, stack: Stack, put_log: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_files(put_log, 3)

    def denied(client: Any, number: int, **kwargs: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "SendMessageBatch"
        )

    wrap_sqs(monkeypatch, denied)
    status, _, err = backfill("--stack", STACK)

    assert status == 2
    assert "access denied on the work queue" in err and "sqs:SendMessage" in err
    assert not backfill.state_file.exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--endpoint", "https://x.example"], "not with --via-lambda (the forwarder functions send with"),
        (["--stack", STACK, "--max-consecutive-failures", "3"], "not with --via-lambda (the forwarder"),
        ([], "--via-lambda needs --stack NAME"),
        (["--stack", STACK, "--dead-letter-queue-url", "https://sqs.x"], "--dead-letter-queue-url goes with"),
    ],
)
def test_options_of_the_other_mode_are_refused(
    backfill: Backfill, s3: Any, args: list[str], words: str
) -> None:
    status, _, err = backfill(*args)
    assert status == 2
    assert words in err


def test_lambda_options_without_via_lambda_are_refused(s3: Any) -> None:
    parsed = _build_parser().parse_args(["replay", f"s3://{BUCKET}/{PREFIX}/", "--stack", STACK, "--no-wait"])
    err = io.StringIO()
    assert replay.run_command(parsed, out=io.StringIO(), err=err) == 2
    assert "error: these options need --via-lambda: --stack, --no-wait" in err.getvalue()


# --- end to end: the queue, the event source mapping, the forwarder, the receiver ------------------------


def run_event_source_mapping(stack: Stack, invoke: Callable[..., Any], *, max_rounds: int = 200) -> int:
    """Play the work queue's event source mapping (ReportBatchItemFailures) until the queue is empty:
    receive a batch of MAPPING_BATCH_SIZE messages, invoke the handler with the event Lambda builds from
    them, delete the messages it did not list in batchItemFailures, and leave those in the queue (made
    visible again at once, instead of after the visibility timeout) for a later round. Returns the number
    of invocations."""
    sqs = stack.sqs
    arn = sqs.get_queue_attributes(QueueUrl=stack.work_queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    for rounds in range(max_rounds):
        messages = sqs.receive_message(
            QueueUrl=stack.work_queue_url,
            MaxNumberOfMessages=MAPPING_BATCH_SIZE,
            AttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        if not messages:
            return rounds
        answer = invoke(sqs_event_from(messages, queue_arn=arn))
        failed = {item["itemIdentifier"] for item in answer.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=stack.work_queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                sqs.delete_message(QueueUrl=stack.work_queue_url, ReceiptHandle=message["ReceiptHandle"])
    raise AssertionError(f"the work queue was not empty after {max_rounds} invocations")


def test_a_backfill_of_many_objects_through_the_queue_delivers_every_line_once_with_live_event_ids(
    backfill: Backfill,
    stack: Stack,
    put_log: Any,
    ingest: IngestServer,
    invoke: Callable[..., Any],
    *,
    forwarder_env: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    forwarder_env(WORK_QUEUE_URL=stack.work_queue_url)  # as the template sets the function
    files = put_files(put_log, 64, lines=5)

    def killed_after_four_batches(client: Any, number: int, **kwargs: Any) -> Any:
        if number == 5:
            raise KeyboardInterrupt
        return client.send_message_batch(**kwargs)

    with monkeypatch.context() as patch:
        wrap_sqs(patch, killed_after_four_batches)
        assert backfill("--stack", STACK, "--no-wait")[0] == 130
    status, out, err = backfill("--stack", STACK, "--no-wait")
    assert status == 0, out + err
    assert "24 files enqueued" in out and "40 skipped (already enqueued)" in out
    assert stack.count() == 64

    invocations = run_event_source_mapping(stack, invoke)

    assert invocations == 64  # one work item an invocation, none failed
    delivered = Counter(ingest.event_ids())
    expected = {
        record_event_id(f.bucket, f.key, f.etag, n): f.key for f in files for n in range(1, len(f.lines) + 1)
    }
    assert set(delivered) == set(expected)
    assert not [event_id for event_id, times in delivered.items() if times > 1]
    assert stack.count() == 0 and stack.count(stack.dead_letter_queue_url) == 0

    # The records are the live path's: the same object, notified through SNS, gives the same ones.
    by_id = {str(r["event_id"]): r for r in ingest.records()}
    ingest.reset()
    invoke(sns_event(s3_notification(files[40])))
    assert [by_id[str(r["event_id"])] for r in ingest.records()] == ingest.records()

    # And the next run sees a drained queue.
    status, out, _ = backfill("--stack", STACK)
    assert status == 0
    assert "work queue drained after" in out and "dead-letter queue: empty" in out
