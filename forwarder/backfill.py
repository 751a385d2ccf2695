"""The stack's side of `replay --via-lambda`: find the work queue, enqueue work items, watch the queue drain.

`replay` lists and plans as it always does; with ``--via-lambda`` it hands each planned file to the
forwarder functions as a work item (forwarder/work.py) on the stack's work queue, whose event source
mapping runs up to ``WorkQueueMaxConcurrency`` forwarders at once. A work item is forwarded exactly as a
notification of that object would be, so the records and event_ids are the live path's.

This module knows the queues and the stack: where the queue URLs come from (stack outputs or URLs given),
how SendMessageBatch answers (per entry), what GetQueueAttributes counts mean, and the Lambda cost
estimate a dry run prints. The loop over files, the state file and the summary stay in forwarder.replay.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from forwarder.progress import count_of, format_bytes, format_duration
from forwarder.redrive import queue_region
from forwarder.sizing import (
    CPU_SOURCE,
    DEFAULT_COMPRESSED_BYTES_PER_LINE,
    DEFAULT_LINES_PER_CPU_SECOND,
    DEFAULT_MEMORY_MB,
    PRICING_SOURCE,
    cpu_share,
    estimate,
    lines_in,
)
from forwarder.work import WorkItem

__all__ = [
    "QueueCounts",
    "QueueSendError",
    "QueueSetupError",
    "SendResult",
    "StackSettings",
    "WatchResult",
    "WorkQueues",
    "batches",
    "check_queues",
    "describe_stack",
    "format_estimate",
    "read_counts",
    "send_batch",
    "watch",
]

# Stack outputs and parameters this command reads.
WORK_QUEUE_OUTPUT = "WorkQueueUrl"
DEAD_LETTER_QUEUE_OUTPUT = "DeadLetterQueueUrl"
FUNCTION_OUTPUT = "ForwarderFunctionArn"
BUCKET_OUTPUT = "LogBucketName"
PREFIX_OUTPUT = "LogPrefix"
CONCURRENCY_PARAMETER = "WorkQueueMaxConcurrency"
MEMORY_PARAMETER = "ForwarderMemorySize"
TIMEOUT_PARAMETER = "ForwarderTimeout"
ENDPOINT_PARAMETER = "IngestEndpoint"  # the stack has a forwarder (and its queues) only when it is set

DEFAULT_CONCURRENCY = 5
DEFAULT_TIMEOUT_SECONDS = 300

# SendMessageBatch takes at most 10 entries, and at most 256 KiB of message bodies in all (a work item is
# a few hundred bytes: the count is what cuts a batch; see batches).
BATCH_ENTRIES = 10
BATCH_BYTES = 256 * 1024
SEND_ATTEMPTS = 5  # per entry that failed without being the sender's fault
FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 8.0

DEFAULT_POLL_SECONDS = 30.0
DEFAULT_WATCH_TIMEOUT_SECONDS = 24 * 3600.0
# The Approximate* queue attributes are eventually consistent: AWS says they may not settle until a
# minute after producers stop sending. The queue counts as drained once it has read empty that long.
SETTLE_SECONDS = 60.0

_QUEUE_MISSING_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
_STACK_ACCESS_CODES = frozenset({"AccessDenied", "AccessDeniedException"})
_STACK_ARN = re.compile(r"^arn:[a-z-]+:cloudformation:(?P<region>[a-z0-9-]+):\d{12}:stack/")
_QUEUE_ARN = re.compile(r"^arn:[a-z-]+:sqs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<name>[\w-]+)$")


class QueueSetupError(Exception):
    """The backfill cannot start: no such stack or queue, an old stack, no access; the message says why."""


class QueueSendError(Exception):
    """The work queue stopped taking messages part-way (after botocore's own retries); a re-run resumes."""


# --- where the queues are ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StackSettings:
    """The outputs and parameters of one stack, as DescribeStacks returns them."""

    name: str
    outputs: Mapping[str, str]
    parameters: Mapping[str, str]
    account: str | None = None  # from the stack id

    def number(self, parameter: str) -> int | None:
        value = self.parameters.get(parameter, "")
        return int(value) if value.strip().lstrip("-").isdigit() else None

    def queues(self) -> WorkQueues:
        """The stack's queues; QueueSetupError when it has no forwarder or predates the work queue."""
        url = self.outputs.get(WORK_QUEUE_OUTPUT)
        if not url and not self.outputs.get(FUNCTION_OUTPUT):
            raise QueueSetupError(
                f"stack {self.name} has no forwarder (no output {FUNCTION_OUTPUT}: its parameter "
                f"{ENDPOINT_PARAMETER} is empty); update the stack with an {ENDPOINT_PARAMETER} to deploy one"
            )
        if not url:
            raise QueueSetupError(
                f"stack {self.name} has no output {WORK_QUEUE_OUTPUT}: it predates the work queue that "
                "--via-lambda needs; update the stack with the current template, then run this again"
            )
        return WorkQueues.from_urls(
            url,
            self.outputs.get(DEAD_LETTER_QUEUE_OUTPUT),
            function=self.outputs.get(FUNCTION_OUTPUT),
            source=f"stack {self.name}",
        )

    def readable_prefix(self) -> tuple[str, str] | None:
        """(bucket, key prefix) the forwarder's role may read: <LogPrefix>/AWSLogs/<account>/ in
        LogBucketName (the template's ForwarderLogReadPolicy)."""
        bucket = self.outputs.get(BUCKET_OUTPUT)
        if not bucket:
            return None
        prefix = self.outputs.get(PREFIX_OUTPUT, "").strip("/")
        logs = f"AWSLogs/{self.account}/" if self.account else "AWSLogs/"
        return bucket, f"{prefix}/{logs}" if prefix else logs


def describe_stack(cloudformation: Any, name: str) -> StackSettings:
    """DescribeStacks of one stack (a name or a stack ARN)."""
    try:
        response = cloudformation.describe_stacks(StackName=name)
    except NoCredentialsError:
        raise
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        region = cloudformation.meta.region_name
        if code == "ValidationError" and "does not exist" in message:
            raise QueueSetupError(
                f"stack {name} not found in {region}; check the name, and set AWS_REGION to the stack's "
                "region (or pass the stack ARN)"
            ) from exc
        if code in _STACK_ACCESS_CODES:
            raise QueueSetupError(
                f"access denied reading stack {name} ({code}: {message}); your credentials need "
                "cloudformation:DescribeStacks on it"
            ) from exc
        raise QueueSetupError(f"cannot read stack {name} in {region} ({code}: {message})") from exc
    except BotoCoreError as exc:
        raise QueueSetupError(f"cannot read stack {name}: {exc}") from exc
    (stack,) = response["Stacks"]
    # arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>
    stack_id = str(stack.get("StackId", "")).split(":")
    return StackSettings(
        account=stack_id[4] if len(stack_id) > 5 and stack_id[4].isdigit() else None,
        name=str(stack.get("StackName", name)),
        outputs={str(o["OutputKey"]): str(o.get("OutputValue", "")) for o in stack.get("Outputs", ())},
        parameters={
            str(p["ParameterKey"]): str(p.get("ResolvedValue", p.get("ParameterValue", "")))
            for p in stack.get("Parameters", ())
        },
    )


def stack_region(name: str) -> str | None:
    """The region of a stack ARN (DescribeStacks accepts one in place of a name); None for a name."""
    match = _STACK_ARN.match(name)
    return match.group("region") if match else None


@dataclass(frozen=True, slots=True)
class WorkQueues:
    """The work queue, its dead-letter queue (if known) and the region both are in."""

    work_queue_url: str
    dead_letter_queue_url: str | None
    region: str
    function: str | None = None  # the forwarder, for the redrive command
    source: str = "--queue-url"

    @classmethod
    def from_urls(
        cls,
        work_queue_url: str,
        dead_letter_queue_url: str | None,
        *,
        function: str | None = None,
        source: str = "--queue-url",
    ) -> WorkQueues:
        """Check both URLs and take the region from them: SQS answers only in the queue's own region."""
        region = _url_region(work_queue_url, "work queue")
        if dead_letter_queue_url:
            dead_region = _url_region(dead_letter_queue_url, "dead-letter queue")
            if dead_region != region:
                raise QueueSetupError(
                    f"the dead-letter queue {dead_letter_queue_url} is in {dead_region}, the work queue in "
                    f"{region}; a queue's dead-letter queue is in its region: use the stack output "
                    f"{DEAD_LETTER_QUEUE_OUTPUT} of the same stack"
                )
        return cls(work_queue_url, dead_letter_queue_url or None, region, function, source)

    def redrive_command(self) -> str:
        function = self.function or f"<{FUNCTION_OUTPUT}>"
        return (
            f"python -m forwarder redrive --queue-url {self.dead_letter_queue_url} --function-name {function}"
        )


def _url_region(url: str, what: str) -> str:
    region = queue_region(url) if url.startswith("https://") else None
    if region is None:
        raise QueueSetupError(
            f"{url!r} is not an SQS queue URL for the {what}; expected "
            f"https://sqs.<region>.amazonaws.com/<account>/<name> (the stack output "
            f"{WORK_QUEUE_OUTPUT if what == 'work queue' else DEAD_LETTER_QUEUE_OUTPUT})"
        )
    return region


def check_queues(sqs: Any, queues: WorkQueues) -> WorkQueues:
    """Fail before listing when the work queue cannot be used; find its dead-letter queue when not given.

    The dead-letter queue named by the work queue's RedrivePolicy (an ARN) is in the same account and
    region, so its URL is the work queue's with the last two path parts replaced.
    """
    attributes = _attributes(sqs, queues.work_queue_url, ["QueueArn", "RedrivePolicy"], "work queue")
    if queues.dead_letter_queue_url is None:
        target = _redrive_target(attributes.get("RedrivePolicy", ""))
        if target is not None:
            base = queues.work_queue_url.rsplit("/", 2)[0]
            dead = f"{base}/{target.group('account')}/{target.group('name')}"
            queues = replace(queues, dead_letter_queue_url=dead)
    if queues.dead_letter_queue_url is not None:
        _attributes(sqs, queues.dead_letter_queue_url, ["QueueArn"], "dead-letter queue")
    return queues


def _redrive_target(policy: str) -> re.Match[str] | None:
    try:
        arn = json.loads(policy).get("deadLetterTargetArn", "") if policy else ""
    except (ValueError, AttributeError):
        return None
    return _QUEUE_ARN.match(str(arn))


def _attributes(sqs: Any, url: str, names: list[str], what: str) -> dict[str, str]:
    try:
        response = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)
    except NoCredentialsError:
        raise
    except ClientError as exc:
        raise QueueSetupError(_queue_error(exc, url, what, "sqs:GetQueueAttributes")) from exc
    except BotoCoreError as exc:
        raise QueueSetupError(f"cannot reach the {what} {url}: {exc}") from exc
    return {str(k): str(v) for k, v in response.get("Attributes", {}).items()}


def _queue_error(exc: ClientError, url: str, what: str, permission: str) -> str:
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    if code in _QUEUE_MISSING_CODES:
        return (
            f"the {what} {url} does not exist ({code}); use the stack output "
            f"{WORK_QUEUE_OUTPUT if what == 'work queue' else DEAD_LETTER_QUEUE_OUTPUT} (or --stack)"
        )
    if code.startswith("KMS."):
        return (
            f"the {what} {url} is encrypted with a KMS key your credentials may not use ({code}: "
            f"{message}); they need kms:GenerateDataKey and kms:Decrypt on it"
        )
    if "AccessDenied" in code:
        return (
            f"access denied on the {what} {url} ({code}: {message}); your credentials need {permission} on it"
        )
    return f"cannot use the {what} {url} ({code}: {message})"


# --- enqueueing ------------------------------------------------------------------------------------------


def batches(items: Iterable[WorkItem]) -> Iterator[list[WorkItem]]:
    """Consecutive runs of at most BATCH_ENTRIES items, one SendMessageBatch each.

    Ten bodies stay far below BATCH_BYTES: an S3 key is at most 1,024 bytes, so a body is at most about
    6.3 KB even when every byte of the key is a control character JSON writes as \\uXXXX.
    """
    batch: list[WorkItem] = []
    for item in items:
        batch.append(item)
        if len(batch) == BATCH_ENTRIES:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(slots=True)
class SendResult:
    """What one batch came to: the items the queue took, and the ones it would not with the reason."""

    sent: list[WorkItem] = field(default_factory=list)
    failed: list[tuple[WorkItem, str]] = field(default_factory=list)
    retries: int = 0


def send_batch(
    sqs: Any,
    queue_url: str,
    items: Sequence[WorkItem],
    *,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = SEND_ATTEMPTS,
) -> SendResult:
    """SendMessageBatch, then again for the entries it failed, with backoff, up to ``attempts`` times each.

    SendMessageBatch answers 200 with a Successful and a Failed list; a Failed entry with SenderFault
    true (a body SQS refuses) fails the same way every time, so it is reported at once. Errors of the
    whole call are raised: QueueSetupError for a missing queue or missing permission (the first batch
    meets them), QueueSendError otherwise.
    """
    result = SendResult()
    pending = {str(number): item for number, item in enumerate(items)}
    reasons: dict[str, str] = {}
    for attempt in range(attempts):
        if attempt:
            sleep(min(FIRST_RETRY_SECONDS * 2 ** (attempt - 1), MAX_RETRY_SECONDS))
            result.retries += len(pending)
        entries = [{"Id": entry_id, "MessageBody": item.to_body()} for entry_id, item in pending.items()]
        response = _send(sqs, queue_url, entries)
        for entry in response.get("Successful", ()):
            item = pending.pop(str(entry.get("Id")), None)
            if item is not None:
                result.sent.append(item)
        for entry in response.get("Failed", ()):
            entry_id = str(entry.get("Id"))
            reason = f"{entry.get('Code', 'error')}: {entry.get('Message', '')}".rstrip(": ")
            if entry.get("SenderFault") and entry_id in pending:
                result.failed.append((pending.pop(entry_id), f"the queue refused it ({reason})"))
            else:
                reasons[entry_id] = reason
        if not pending:
            return result
    for entry_id, item in pending.items():
        reason = reasons.get(entry_id, "not in the answer")
        result.failed.append((item, f"not taken after {attempts} attempts ({reason})"))
    return result


def _send(sqs: Any, queue_url: str, entries: list[dict[str, str]]) -> Any:
    try:
        return sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    except NoCredentialsError:
        raise
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        text = _queue_error(exc, queue_url, "work queue", "sqs:SendMessage")
        if code in _QUEUE_MISSING_CODES or "AccessDenied" in code or code.startswith("KMS."):
            raise QueueSetupError(text) from exc
        raise QueueSendError(text) from exc
    except BotoCoreError as exc:
        raise QueueSendError(f"cannot reach the work queue {queue_url}: {exc}") from exc


# --- watching the queue drain ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """The work queue's approximate counts and, when known, the dead-letter queue's."""

    waiting: int
    in_flight: int
    delayed: int = 0
    dead: int | None = None

    @property
    def remaining(self) -> int:
        return self.waiting + self.in_flight + self.delayed

    def describe_work(self) -> str:
        text = f"work queue: {self.waiting:,} waiting, {self.in_flight:,} in flight"
        if self.delayed:
            text += f", {self.delayed:,} delayed"
        return text

    def describe(self) -> str:
        text = self.describe_work()
        if self.dead is not None:
            text += f"; dead-letter queue: {count_of(self.dead, 'message')}"
        return text


def read_counts(sqs: Any, queues: WorkQueues) -> QueueCounts:
    work = _attributes(
        sqs,
        queues.work_queue_url,
        [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
        "work queue",
    )
    dead = None
    if queues.dead_letter_queue_url is not None:
        dead_attributes = _attributes(
            sqs, queues.dead_letter_queue_url, ["ApproximateNumberOfMessages"], "dead-letter queue"
        )
        dead = _count(dead_attributes, "ApproximateNumberOfMessages")
    return QueueCounts(
        waiting=_count(work, "ApproximateNumberOfMessages"),
        in_flight=_count(work, "ApproximateNumberOfMessagesNotVisible"),
        delayed=_count(work, "ApproximateNumberOfMessagesDelayed"),
        dead=dead,
    )


def _count(attributes: Mapping[str, str], name: str) -> int:
    value = attributes.get(name, "0")
    return int(value) if value.isdigit() else 0


@dataclass(frozen=True, slots=True)
class WatchResult:
    first: QueueCounts
    last: QueueCounts
    drained: bool
    seconds: float

    @property
    def new_dead_letters(self) -> int:
        if self.first.dead is None or self.last.dead is None:
            return 0
        return max(self.last.dead - self.first.dead, 0)


def watch(
    sqs: Any,
    queues: WorkQueues,
    *,
    report: Callable[[QueueCounts, float], None],
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    timeout_seconds: float = DEFAULT_WATCH_TIMEOUT_SECONDS,
    settle_seconds: float = SETTLE_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WatchResult:
    """Read the counts every ``poll_seconds`` until the work queue has read empty for ``settle_seconds``,
    or ``timeout_seconds`` have passed; ``report`` gets each reading. KeyboardInterrupt propagates."""
    started = clock()
    first: QueueCounts | None = None
    empty_since: float | None = None
    while True:
        counts = read_counts(sqs, queues)
        now = clock()
        elapsed = now - started
        first = first or counts
        report(counts, elapsed)
        if counts.remaining:
            empty_since = None
        else:
            empty_since = now if empty_since is None else empty_since
            if now - empty_since >= settle_seconds:
                return WatchResult(first, counts, drained=True, seconds=elapsed)
        if elapsed >= timeout_seconds:
            return WatchResult(first, counts, drained=False, seconds=elapsed)
        sleep(max(min(poll_seconds, timeout_seconds - elapsed), 0.0))


class WatchDisplay:
    """Queue readings on ``stream``: one redrawn line on a terminal, a line per reading elsewhere."""

    def __init__(self, stream: TextIO, *, tty: bool) -> None:
        self._stream = stream
        self._tty = tty
        self._shown = False

    def __call__(self, counts: QueueCounts, elapsed: float) -> None:
        text = f"[{format_duration(elapsed)}] {counts.describe()}"
        if self._tty:
            self._stream.write("\r\x1b[K" + text)
            self._shown = True
        else:
            self._stream.write(text + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._shown:
            self._stream.write("\n")
            self._shown = False


# --- the cost estimate ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sizing:
    """Memory and concurrency for the estimate, each with where it came from."""

    memory_mb: int
    memory_source: str
    concurrency: int
    concurrency_source: str
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS


def sizing_for(stack: StackSettings | None, *, memory_mb: int | None, concurrency: int | None) -> Sizing:
    """The options when given, else the stack's parameters, else the defaults."""

    def pick(option: int | None, option_name: str, parameter: str, default: int) -> tuple[int, str]:
        if option is not None:
            return option, option_name
        value = stack.number(parameter) if stack is not None else None
        if value is not None and value > 0:
            return value, f"stack parameter {parameter}"
        return default, "default"

    memory, memory_source = pick(memory_mb, "--memory-mb", MEMORY_PARAMETER, DEFAULT_MEMORY_MB)
    at_once, at_once_source = pick(concurrency, "--concurrency", CONCURRENCY_PARAMETER, DEFAULT_CONCURRENCY)
    timeout, _ = pick(None, "", TIMEOUT_PARAMETER, DEFAULT_TIMEOUT_SECONDS)
    return Sizing(memory, memory_source, at_once, at_once_source, timeout)


def format_estimate(
    objects: int, compressed_bytes: int, sizing: Sizing, *, uncompressed: int = 0
) -> list[str]:
    """What forwarding these objects costs on Lambda, by forwarder.sizing's model, naming its sources.

    The model counts lines in gzip bytes; ``uncompressed`` plain .log files (Classic ELB) are counted the
    same way, which overstates their lines, and the output says so.
    """
    lines = lines_in(compressed_bytes)
    result = estimate(
        lines=lines,
        objects=objects,
        memory_mb=sizing.memory_mb,
        concurrency=sizing.concurrency,
        timeout_seconds=sizing.timeout_seconds,
    )
    return [
        f"estimate on Lambda: {count_of(objects, 'object')}, {format_bytes(compressed_bytes)}, about "
        f"{lines:,} lines ({DEFAULT_COMPRESSED_BYTES_PER_LINE:g} compressed bytes a line)",
        f"  at {sizing.memory_mb} MB ({cpu_share(sizing.memory_mb):.2f} vCPU, {sizing.memory_source}) and "
        f"concurrency {sizing.concurrency} ({sizing.concurrency_source}): function time "
        f"{format_duration(result.function_seconds)}, wall time {format_duration(result.wall_seconds)}, "
        f"{count_of(result.invocations, 'invocation')}, cost USD {_dollars(result.cost_usd)} "
        f"(USD {result.cost_per_million_lines:.4f} per million lines)",
        f"  model: {DEFAULT_LINES_PER_CPU_SECOND:,.0f} lines per vCPU-second (scripts/bench/benchmark.py "
        f"--sizing); CPU: {CPU_SOURCE}; price: {PRICING_SOURCE}",
        "  CPU-bound work is assumed: a slow endpoint makes it longer; SQS and S3 requests are not counted",
    ] + (
        [
            f"  {count_of(uncompressed, 'file')} not compressed (.log) counted as gzip bytes: "
            "the estimate is high for them"
        ]
        if uncompressed
        else []
    )


def _dollars(amount: float) -> str:
    return f"{amount:,.2f}" if amount >= 1 else f"{amount:.4f}"
