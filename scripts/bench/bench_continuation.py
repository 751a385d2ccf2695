"""A file larger than one invocation can send, forwarded by the real handler over several invocations.

    python scripts/bench/bench_continuation.py FILE --result OUT.json [--memory-mb 1024] [--timeout 300]
                                              [--speedup 100]

Run by scripts/bench/benchmark.py --continuation. moto plays S3 and SQS in this process: the bucket
notifies a queue of the new object (the stack's topic carries the same S3 notification), and the stack's
work queue, with its redrive policy, takes what an invocation hands on. The script plays Lambda's event
source mappings (BatchSize 1): it invokes forwarder.handler.handler with each message as an SQS event,
deletes the message unless the answer lists it in batchItemFailures, and goes on until both queues are
empty. The receiver (bench_receiver) runs in a thread and tallies every record's event_id.

The deadline is simulated: each invocation's context counts down the function timeout on a clock that is
the forwarder's CPU time (the invoking thread's and its delivery thread's) divided by the CPU share of
the memory size (forwarder.sizing.cpu_share) and multiplied by --speedup. So a run of seconds stands for
one of minutes: a file of N lines here meets its deadlines as a file of N x speedup lines would on Lambda
at that memory (at this machine's speed per CPU second). Waiting for the receiver's answers does not move
the clock: CPU-bound, as forwarder.sizing assumes. The first message, S3's s3:TestEvent, warms the
runtime as a cold start would before the clock.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import logging
import os
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

# The repository root, appended as in bench_contenders.py (the benchmark's snapshot comes first).
sys.path += [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parents[1] / "common")]

REGION = "us-east-1"
BUCKET = "bench-log-bucket"
KEY_PREFIX = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2025/03/14/"
# As templates/onboarding.yaml sets the work queue.
VISIBILITY_TIMEOUT = "5400"
MAX_RECEIVE_COUNT = "3"
# A chain longer than this is a loop, not a large file.
MAX_INVOCATIONS = 200
_EVENT_ID = re.compile(rb'"event_id":"([0-9a-f]+)"')


class SimulatedContext:
    """A Lambda context whose remaining time runs on the forwarder's CPU time, scaled (see the docstring).

    The forwarder's CPU is that of the thread calling the handler plus that of its delivery thread (which
    compresses and posts a batch while the next is built, and asks for the remaining time itself); the
    receiver's threads in this process are left out."""

    function_name = "bench-forwarder"

    def __init__(self, timeout_seconds: float, cpu_share: float, speedup: float, request_id: str) -> None:
        self.aws_request_id = request_id
        self._timeout = timeout_seconds
        self._scale = speedup / cpu_share
        from forwarder.pipeline import DELIVERY_THREAD  # noqa: PLC0415 -- as run() does, once the env is set

        self._delivery_thread = DELIVERY_THREAD
        self._main = time.pthread_getcpuclockid(threading.get_ident())
        self._started = time.clock_gettime(self._main)
        self.cpu_seconds = 0.0  # the forwarder's CPU seconds, as last read

    def seconds_used(self) -> float:
        """Simulated seconds of the invocation used so far."""
        cpu = time.clock_gettime(self._main) - self._started
        for thread in threading.enumerate():  # the delivery thread lives as long as the file's forwarding
            if thread.name.startswith(self._delivery_thread) and thread.ident is not None:
                with contextlib.suppress(OSError):  # it ended meanwhile
                    cpu += time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        self.cpu_seconds = max(self.cpu_seconds, cpu)
        return self.cpu_seconds * self._scale

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._timeout - self.seconds_used()) * 1000))


class _Summaries(logging.Handler):
    """Keeps the forwarder's per-object summary lines (the `forwarder.summary` logger)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.summaries: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        summary = getattr(record, "summary", None)
        if summary is not None:
            self.summaries.append(dict(summary))


def _sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event an SQS event source mapping invokes a function with, for messages it received."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": m.get("Attributes", {}).get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": m.get("Attributes", {}).get("SentTimestamp", "0"),
                },
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def _receive_one(sqs: Any, queues: list[tuple[str, str]]) -> tuple[str, str, list[dict[str, Any]]] | None:
    """One message from the first of the queues that has one, with its queue's URL and ARN."""
    for url, arn in queues:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"]).get(
            "Messages", []
        )
        if messages:
            return url, arn, messages
    return None


def _queue(sqs: Any, name: str, attributes: dict[str, str] | None = None) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes or {})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return str(url), str(arn)


def run_continuation(path: Path, *, memory_mb: int, timeout_seconds: float, speedup: float) -> dict[str, Any]:
    """Forward the file through the handler, invocation after invocation; return the chain and the tally."""
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", REGION),
    ):
        os.environ[name] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import bench_receiver  # noqa: PLC0415
    import boto3  # noqa: PLC0415 -- after the environment above
    from moto import mock_aws  # noqa: PLC0415

    from forwarder import handler  # noqa: PLC0415
    from forwarder.records import record_event_id  # noqa: PLC0415
    from forwarder.sizing import cpu_share  # noqa: PLC0415

    receiver, _ = bench_receiver.start()
    ids: Counter[bytes] = Counter()
    add = receiver.stats.add

    def tally(gzip_bytes: int, body: bytes | None, intake: Any) -> int:
        if body is not None:
            ids.update(_EVENT_ID.findall(body))
        return add(gzip_bytes, body, intake)

    receiver.stats.add = tally  # type: ignore[method-assign]
    summaries = _Summaries()
    logging.getLogger("forwarder.summary").addHandler(summaries)
    share = cpu_share(memory_mb)
    key = KEY_PREFIX + path.name
    with gzip.open(path, "rb") as text:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: text.read(1 << 20), b""))
    with mock_aws():
        s3: Any = boto3.client("s3", region_name=REGION)
        sqs: Any = boto3.client("sqs", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        notices_url, notices_arn = _queue(sqs, "bench-notifications")
        _, dead_letter_arn = _queue(sqs, "bench-ForwarderDeadLetterQueue")
        redrive = {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
        work_url, work_arn = _queue(
            sqs,
            "bench-WorkQueue",
            {"VisibilityTimeout": VISIBILITY_TIMEOUT, "RedrivePolicy": json.dumps(redrive)},
        )
        s3.put_bucket_notification_configuration(
            Bucket=BUCKET,
            NotificationConfiguration={
                "QueueConfigurations": [{"QueueArn": notices_arn, "Events": ["s3:ObjectCreated:*"]}]
            },
        )
        etag = s3.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())["ETag"]
        os.environ.update(
            {
                "HTTP_ENDPOINT": f"http://127.0.0.1:{receiver.server_address[1]}/",
                "HTTP_ALLOW_INSECURE": "true",
                "WORK_QUEUE_URL": work_url,
            }
        )
        handler.reset()
        invocations: list[dict[str, Any]] = []
        wall_started = time.perf_counter()
        while len(invocations) < MAX_INVOCATIONS:
            received = _receive_one(sqs, [(notices_url, notices_arn), (work_url, work_arn)])
            if received is None:
                break  # both queues are empty: the chain has ended
            url, arn, messages = received
            context = SimulatedContext(timeout_seconds, share, speedup, f"invocation-{len(invocations) + 1}")
            seen = len(summaries.summaries)
            answer = handler.handler(_sqs_event(messages, arn), context)
            simulated = context.seconds_used()
            cpu = context.cpu_seconds  # the delivery thread's part as the last deadline check saw it
            failed = {failure["itemIdentifier"] for failure in (answer or {}).get("batchItemFailures", [])}
            for message in messages:
                if (
                    message["MessageId"] in failed
                ):  # back to the queue at once (its visibility, fast-forwarded)
                    sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            for summary in summaries.summaries[seen:]:
                invocations.append(
                    {
                        "invocation": summary["invocation"],
                        "start_line": summary["start_line"],
                        "continued_at": summary.get("continued_at"),
                        "outcome": summary["outcome"],
                        "records_sent": summary["records_sent"],
                        "cpu_seconds": round(cpu, 3),
                        "simulated_seconds": round(simulated, 1),
                        "failed_messages": len(failed),
                    }
                )
        wall_seconds = time.perf_counter() - wall_started
        dead_letters = int(
            sqs.get_queue_attributes(
                QueueUrl=sqs.get_queue_url(QueueName="bench-ForwarderDeadLetterQueue")["QueueUrl"],
                AttributeNames=["ApproximateNumberOfMessages"],
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
    counted = receiver.stats.snapshot()
    receiver.shutdown()
    expected = {record_event_id(BUCKET, key, etag, n).encode() for n in range(1, lines + 1)}
    return {
        "forwarder_file": sys.modules["forwarder"].__file__,
        "memory_mb": memory_mb,
        "cpu_share": round(share, 3),
        "timeout_seconds": timeout_seconds,
        "speedup": speedup,
        "lines": lines,
        "invocations": invocations,
        "records_received": counted["records"],
        "distinct_event_ids": len(ids),
        "duplicate_event_ids": sum(count - 1 for count in ids.values() if count > 1),
        "event_ids_as_uncut": set(ids) == expected,
        "dead_letters": dead_letters,
        "bad_bodies": counted["bad_bodies"],
        "wall_seconds": round(wall_seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path", type=Path, metavar="FILE", help="the .log.gz to forward")
    parser.add_argument("--result", type=Path, required=True, help="write the results here as JSON")
    parser.add_argument("--memory-mb", type=int, default=1024, help="the function's memory (default 1024)")
    parser.add_argument("--timeout", type=float, default=300.0, help="the function's timeout (default 300)")
    parser.add_argument("--speedup", type=float, default=100.0, help="how much faster the clock runs")
    args = parser.parse_args(argv)
    result = run_continuation(
        args.path, memory_mb=args.memory_mb, timeout_seconds=args.timeout, speedup=args.speedup
    )
    args.result.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
