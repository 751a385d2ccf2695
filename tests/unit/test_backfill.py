"""replay --via-lambda, the queue side: batches, per-entry failures, queue URLs, stack outputs, the watch,
the estimate. Fakes stand in for the SQS and CloudFormation clients: no network."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from forwarder import backfill, replay, sizing
from forwarder.backfill import (
    BATCH_BYTES,
    BATCH_ENTRIES,
    QueueCounts,
    QueueSendError,
    QueueSetupError,
    StackSettings,
    WorkQueues,
    batches,
    describe_stack,
    format_estimate,
    send_batch,
    sizing_for,
    watch,
)
from forwarder.progress import Progress
from forwarder.work import WorkItem

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/onboarding-WorkQueue-1A2B3C"
DEAD = "https://sqs.eu-west-1.amazonaws.com/123456789012/onboarding-ForwarderDeadLetterQueue-4D5E6F"


def items(count: int) -> list[WorkItem]:
    return [WorkItem(bucket="logs", key=f"AWSLogs/1/{n:03d}.log.gz", etag=f"e{n}") for n in range(count)]


def client_error(code: str, message: str = "", operation: str = "SendMessageBatch") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class FakeSqs:
    """SendMessageBatch that fails the entries ``fail(body, attempt)`` names, with the given code."""

    def __init__(self, fail: Any = None, *, raises: ClientError | None = None) -> None:
        self.fail = fail or (lambda body, attempt: None)
        self.raises = raises
        self.calls: list[list[dict[str, str]]] = []
        self.queued: list[str] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        assert QueueUrl == QUEUE
        assert len(Entries) <= BATCH_ENTRIES
        assert sum(len(e["MessageBody"].encode()) for e in Entries) <= BATCH_BYTES
        self.calls.append(Entries)
        if self.raises is not None:
            raise self.raises
        successful, failed = [], []
        for entry in Entries:
            verdict = self.fail(entry["MessageBody"], len(self.calls))
            if verdict is None:
                self.queued.append(entry["MessageBody"])
                successful.append({"Id": entry["Id"], "MessageId": f"m{len(self.queued)}"})
            else:
                code, sender_fault = verdict
                failed.append({"Id": entry["Id"], "SenderFault": sender_fault, "Code": code, "Message": "no"})
        return {"Successful": successful, "Failed": failed}


# --- batches and SendMessageBatch ------------------------------------------------------------------------


def test_batches_hold_ten_items_in_order() -> None:
    cut = list(batches(items(23)))
    assert [len(batch) for batch in cut] == [10, 10, 3]
    assert [item for batch in cut for item in batch] == items(23)


def test_ten_of_the_largest_possible_work_items_fit_in_one_batch() -> None:
    """S3 keys are at most 1,024 bytes; the worst is one JSON escapes six-fold (control characters)."""
    worst = WorkItem(bucket="b" * 63, key="\x01" * 1024, etag="0" * 32 + "-10000", version_id="v" * 1024)
    assert BATCH_ENTRIES * len(worst.to_body().encode()) <= BATCH_BYTES


def test_failed_entries_are_sent_again_alone_with_growing_waits() -> None:
    def flaky(body: str, attempt: int) -> Any:
        key = json.loads(body)["forwarder_work"]["key"]
        if key.endswith(("003.log.gz", "007.log.gz")) and attempt < 3:
            return ("InternalError", False)
        return None

    sqs = FakeSqs(flaky)
    waits: list[float] = []
    result = send_batch(sqs, QUEUE, items(10), sleep=waits.append)

    assert sorted(result.sent, key=lambda i: i.key) == items(10)
    assert result.failed == []
    assert [len(call) for call in sqs.calls] == [10, 2, 2]
    assert waits == [0.5, 1.0]
    assert result.retries == 4
    assert sorted(sqs.queued) == sorted(i.to_body() for i in items(10))  # each exactly once


def test_an_entry_refused_as_the_senders_fault_is_reported_without_retrying() -> None:
    refused = items(3)[1]
    sqs = FakeSqs(
        lambda body, attempt: ("InvalidMessageContents", True) if body == refused.to_body() else None
    )

    result = send_batch(sqs, QUEUE, items(3), sleep=lambda s: None)

    assert result.sent == [items(3)[0], items(3)[2]]
    assert [(item, reason) for item, reason in result.failed] == [
        (refused, "the queue refused it (InvalidMessageContents: no)")
    ]
    assert len(sqs.calls) == 1


def test_an_entry_that_keeps_failing_is_reported_after_the_last_attempt() -> None:
    sqs = FakeSqs(lambda body, attempt: ("ServiceUnavailable", False) if "000" in body else None)
    waits: list[float] = []

    result = send_batch(sqs, QUEUE, items(2), sleep=waits.append, attempts=5)

    assert result.sent == [items(2)[1]]
    ((item, reason),) = result.failed
    assert item == items(2)[0]
    assert reason == "not taken after 5 attempts (ServiceUnavailable: no)"
    assert waits == [0.5, 1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    ("code", "error", "words"),
    [
        ("AccessDenied", QueueSetupError, "sqs:SendMessage"),
        ("AWS.SimpleQueueService.NonExistentQueue", QueueSetupError, "does not exist"),
        ("QueueDoesNotExist", QueueSetupError, "does not exist"),
        ("KMS.AccessDeniedException", QueueSetupError, "kms:GenerateDataKey"),
        ("ThrottlingException", QueueSendError, "ThrottlingException"),
    ],
)
def test_errors_of_the_whole_call_are_typed(code: str, error: type[Exception], words: str) -> None:
    sqs = FakeSqs(raises=client_error(code, "nope"))
    with pytest.raises(error, match=words):
        send_batch(sqs, QUEUE, items(1), sleep=lambda s: None)


# --- where the queues are ---------------------------------------------------------------------------------


def test_the_region_comes_from_the_queue_url() -> None:
    queues = WorkQueues.from_urls(QUEUE, DEAD)
    assert queues.region == "eu-west-1"
    assert queues.redrive_command() == (
        f"python -m forwarder redrive --queue-url {DEAD} --function-name <ForwarderFunctionArn>"
    )


@pytest.mark.parametrize(
    "url",
    [
        "onboarding-WorkQueue-1A2B3C",
        "http://sqs.eu-west-1.amazonaws.com/123456789012/q",  # TLS only
        "https://example.com/123456789012/q",
        "arn:aws:sqs:eu-west-1:123456789012:q",
    ],
)
def test_a_bad_queue_url_names_what_is_expected(url: str) -> None:
    with pytest.raises(QueueSetupError, match=r"not an SQS queue URL .*https://sqs.<region>.amazonaws.com"):
        WorkQueues.from_urls(url, None)


def test_a_dead_letter_queue_in_another_region_is_refused() -> None:
    elsewhere = DEAD.replace("eu-west-1", "us-east-1")
    with pytest.raises(QueueSetupError, match="is in us-east-1, the work queue in eu-west-1"):
        WorkQueues.from_urls(QUEUE, elsewhere)


def stack(outputs: dict[str, str], parameters: dict[str, str] | None = None) -> StackSettings:
    return StackSettings("onboarding", outputs, parameters or {})


def test_a_stack_without_the_work_queue_output_must_be_updated() -> None:
    old = stack({"DeadLetterQueueUrl": DEAD, "LogBucketName": "logs", "ForwarderFunctionArn": "arn:fn"})
    with pytest.raises(QueueSetupError, match=r"no output WorkQueueUrl: it predates .* update the stack"):
        old.queues()


def test_a_stack_without_a_forwarder_says_which_parameter_deploys_one() -> None:
    with pytest.raises(
        QueueSetupError, match=r"stack onboarding has no forwarder .* IngestEndpoint is empty"
    ):
        stack({"LogBucketName": "logs", "LogPrefix": "", "TopicArn": "arn:topic"}).queues()


def test_the_stack_outputs_name_both_queues_and_the_function() -> None:
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:onboarding-Forwarder"
    queues = stack({"WorkQueueUrl": QUEUE, "DeadLetterQueueUrl": DEAD, "ForwarderFunctionArn": arn}).queues()
    assert (queues.work_queue_url, queues.dead_letter_queue_url, queues.region) == (QUEUE, DEAD, "eu-west-1")
    assert queues.source == "stack onboarding"
    assert queues.redrive_command().endswith(f"--function-name {arn}")


@pytest.mark.parametrize(
    ("outputs", "account", "readable"),
    [
        (
            {"LogBucketName": "logs", "LogPrefix": "prod"},
            "123456789012",
            ("logs", "prod/AWSLogs/123456789012/"),
        ),
        ({"LogBucketName": "logs", "LogPrefix": ""}, "123456789012", ("logs", "AWSLogs/123456789012/")),
        ({"LogBucketName": "logs", "LogPrefix": "prod"}, None, ("logs", "prod/AWSLogs/")),
        ({}, "123456789012", None),
    ],
)
def test_readable_prefix_is_what_the_forwarder_role_may_read(
    outputs: dict[str, str], account: str | None, readable: tuple[str, str] | None
) -> None:
    assert StackSettings("onboarding", outputs, {}, account).readable_prefix() == readable


class FakeCloudFormation:
    class meta:
        region_name = "eu-west-1"

    def __init__(self, error: ClientError) -> None:
        self.error = error

    def describe_stacks(self, **kwargs: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    ("code", "message", "words"),
    [
        (
            "ValidationError",
            "Stack with id onboarding does not exist",
            "stack onboarding not found in eu-west-1",
        ),
        ("AccessDenied", "not authorized", "cloudformation:DescribeStacks"),
        ("ExpiredToken", "expired", r"cannot read stack onboarding in eu-west-1 \(ExpiredToken: expired\)"),
    ],
)
def test_stack_errors_say_what_to_do(code: str, message: str, words: str) -> None:
    with pytest.raises(QueueSetupError, match=words):
        describe_stack(FakeCloudFormation(client_error(code, message, "DescribeStacks")), "onboarding")


def test_a_stack_arn_carries_its_region() -> None:
    arn = "arn:aws:cloudformation:ap-southeast-2:123456789012:stack/onboarding/1a2b3c4d-5e6f"
    assert backfill.stack_region(arn) == "ap-southeast-2"
    assert backfill.stack_region("onboarding") is None


# --- watching ---------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class CountingSqs:
    """GetQueueAttributes answering the next of the given (waiting, in flight, dead) readings each time."""

    def __init__(self, readings: list[tuple[int, int, int]]) -> None:
        self.readings = readings
        self.reads = 0

    def get_queue_attributes(self, *, QueueUrl: str, AttributeNames: list[str]) -> Any:
        waiting, in_flight, dead = self.readings[min(self.reads, len(self.readings) - 1)]
        if QueueUrl == DEAD:
            self.reads += 1  # read after the work queue: one reading done
            return {"Attributes": {"ApproximateNumberOfMessages": str(dead)}}
        return {
            "Attributes": {
                "ApproximateNumberOfMessages": str(waiting),
                "ApproximateNumberOfMessagesNotVisible": str(in_flight),
                "ApproximateNumberOfMessagesDelayed": "0",
            }
        }


def test_the_watch_ends_once_the_queue_has_read_empty_for_a_minute_and_counts_new_dead_letters() -> None:
    clock = Clock()
    sqs = CountingSqs([(40, 10, 1), (12, 10, 1), (0, 2, 2), (0, 0, 3), (0, 0, 3), (0, 0, 3), (0, 0, 3)])
    seen: list[tuple[QueueCounts, float]] = []

    result = watch(
        sqs,
        WorkQueues.from_urls(QUEUE, DEAD),
        report=lambda counts, elapsed: seen.append((counts, elapsed)),
        poll_seconds=30,
        clock=clock,
        sleep=clock.sleep,
    )

    assert result.drained
    # Empty at 90 s, still empty at 120 s and 150 s: a minute of empty readings.
    assert [elapsed for _, elapsed in seen] == [0, 30, 60, 90, 120, 150]
    assert result.seconds == 150
    assert (result.first.dead, result.last.dead, result.new_dead_letters) == (1, 3, 2)
    assert seen[1][0].describe() == "work queue: 12 waiting, 10 in flight; dead-letter queue: 1 message"


def test_a_reading_with_messages_again_restarts_the_minute() -> None:
    clock = Clock()
    sqs = CountingSqs([(0, 0, 0), (0, 1, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0)])
    result = watch(
        sqs, WorkQueues.from_urls(QUEUE, DEAD), report=lambda c, e: None, clock=clock, sleep=clock.sleep
    )
    assert result.drained
    assert result.seconds == 120  # empty from 60 s on, not from 0 s


def test_the_watch_is_bounded() -> None:
    clock = Clock()
    sqs = CountingSqs([(5, 5, 0)])
    result = watch(
        sqs,
        WorkQueues.from_urls(QUEUE, None),
        report=lambda c, e: None,
        poll_seconds=30,
        timeout_seconds=100,
        clock=clock,
        sleep=clock.sleep,
    )
    assert not result.drained
    assert result.seconds == 100  # readings at 0, 30, 60, 90 and a last one at the limit
    assert result.last.remaining == 10
    assert result.last.dead is None


def test_the_watch_prints_a_line_per_reading_off_a_terminal() -> None:
    stream = io.StringIO()
    display = backfill.WatchDisplay(stream, tty=False)
    display(QueueCounts(3, 2, dead=0), 30)
    display(QueueCounts(0, 0, dead=0), 754)
    display.close()
    assert stream.getvalue().splitlines() == [
        "[30s] work queue: 3 waiting, 2 in flight; dead-letter queue: 0 messages",
        "[12m34s] work queue: 0 waiting, 0 in flight; dead-letter queue: 0 messages",
    ]


def test_the_watch_redraws_one_line_on_a_terminal() -> None:
    stream = io.StringIO()
    display = backfill.WatchDisplay(stream, tty=True)
    display(QueueCounts(3, 2, delayed=1), 30)
    display(QueueCounts(0, 0), 60)
    assert "\n" not in stream.getvalue()
    assert stream.getvalue() == (
        "\r\x1b[K[30s] work queue: 3 waiting, 2 in flight, 1 delayed"
        "\r\x1b[K[1m00s] work queue: 0 waiting, 0 in flight"
    )
    display.close()
    assert stream.getvalue().endswith("\n")


# --- the estimate -----------------------------------------------------------------------------------------


def test_sizing_takes_the_options_then_the_stack_parameters_then_the_defaults() -> None:
    settings = stack(
        {}, {"WorkQueueMaxConcurrency": "20", "ForwarderMemorySize": "2048", "ForwarderTimeout": "900"}
    )
    assert sizing_for(settings, memory_mb=None, concurrency=None) == backfill.Sizing(
        2048, "stack parameter ForwarderMemorySize", 20, "stack parameter WorkQueueMaxConcurrency", 900
    )
    assert sizing_for(settings, memory_mb=512, concurrency=3) == backfill.Sizing(
        512, "--memory-mb", 3, "--concurrency", 900
    )
    assert sizing_for(None, memory_mb=None, concurrency=None) == backfill.Sizing(
        1024, "default", 5, "default", 300
    )


def test_the_estimate_prints_the_models_numbers_and_names_its_sources() -> None:
    objects, compressed = 2_000, 30 * 1024**3
    choice = backfill.Sizing(512, "stack parameter ForwarderMemorySize", 10, "--concurrency", 300)

    text = "\n".join(format_estimate(objects, compressed, choice))

    lines = sizing.lines_in(compressed)
    model = sizing.estimate(lines=lines, objects=objects, memory_mb=512, concurrency=10, timeout_seconds=300)
    assert f"2,000 objects, 30.0 GiB, about {lines:,} lines" in text
    assert (
        "at 512 MB (0.29 vCPU, stack parameter ForwarderMemorySize) and concurrency 10 (--concurrency)"
        in text
    )
    assert f"function time {backfill.format_duration(model.function_seconds)}" in text
    assert f"wall time {backfill.format_duration(model.wall_seconds)}" in text
    assert f"{model.invocations:,} invocations" in text
    assert model.cost_usd < 1
    assert f"cost USD {model.cost_usd:.4f} (USD {model.cost_per_million_lines:.4f} per million lines)" in text
    assert sizing.PRICING_SOURCE in text and sizing.CPU_SOURCE in text
    assert "not compressed" not in text


def test_the_estimate_says_when_plain_log_files_make_it_high() -> None:
    text = format_estimate(3, 3000, backfill.Sizing(256, "default", 5, "default"), uncompressed=2)
    assert text[-1] == "  2 files not compressed (.log) counted as gzip bytes: the estimate is high for them"


# --- how often replay --via-lambda writes its state -----------------------------------------------------


class TimedState(replay.ReplayState):
    """A state whose save takes ``save_seconds`` on the clock and records how many files it held."""

    def __init__(self, clock: Clock, save_seconds: float) -> None:
        super().__init__(Path("unused.json"), "logs")
        self.clock = clock
        self.save_seconds = save_seconds
        self.saved: list[int] = []

    def save(self) -> None:
        self.clock.now += self.save_seconds
        self.saved.append(len(self.enqueued))


class TimedSqs:
    """SendMessageBatch taking ``seconds`` on the clock, every entry taken."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.clock.now += self.seconds
        return {"Successful": [{"Id": e["Id"], "MessageId": e["Id"]} for e in Entries], "Failed": []}


def enqueue_with(state: TimedState, sqs: TimedSqs, clock: Clock, count: int) -> None:
    files = [
        replay.LogFile(f"k{n:04d}.log.gz", f"e{n}", 100, datetime(2025, 3, 14, tzinfo=UTC), True)
        for n in range(count)
    ]
    replay.enqueue_files(
        sqs,
        QUEUE,
        "logs",
        files,
        state=state,
        progress=Progress(count, count * 100, stream=io.StringIO(), tty=False),
        summary=replay.EnqueueSummary(),
        clock=clock,
    )


def test_the_state_is_saved_after_every_batch_while_saving_is_cheap() -> None:
    clock = Clock()
    state = TimedState(clock, save_seconds=0.001)
    enqueue_with(state, TimedSqs(clock, 0.05), clock, 45)
    assert state.saved == [10, 20, 30, 40, 45]


def test_saving_takes_at_most_about_a_tenth_of_the_run_once_the_state_is_large() -> None:
    clock = Clock()
    state = TimedState(clock, save_seconds=1.0)  # a large state file
    started = clock.now
    enqueue_with(state, TimedSqs(clock, 0.5), clock, 1000)  # 100 batches of 0.5 s

    assert state.saved[-1] == 1000  # the last batch is always recorded
    # Besides the first save and the last one, which every run has, saves take a tenth of the time.
    between = (len(state.saved) - 2) * 1.0
    assert between / (clock.now - started) <= replay.SAVE_TIME_SHARE
    # A save after the first batch, then one every 18 batches (9 s of sending after a 1 s save).
    assert state.saved[:3] == [10, 190, 370]
