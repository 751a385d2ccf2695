"""Hand the rest of an S3 object to a later invocation, through the stack's work queue.

An invocation that runs out of time part-way through an object (at 256 MB a Lambda gets about a seventh of
a vCPU; a file of millions of lines does not fit in one run) sends a work item naming the object version
and the first line not yet delivered to WORK_QUEUE_URL, and ends the object as ``continued``: its event
succeeds, and the queue's event source mapping starts the next invocation of the chain. The pipeline stops
``reserve_seconds`` earlier than it otherwise would, so there is time for the SendMessage call.

Only progress is handed on: an invocation that delivered no line of the object fails instead (its
work-queue message is received again, then moved to the dead-letter queue by the queue's redrive policy),
so a broken endpoint cannot make a chain that never ends. A work item that failed comes back after a delay
that doubles with each receive (``retry_delay``), not after the queue's visibility timeout (6 times the
longest function timeout, as Lambda asks of an SQS event source): the forwarder sets the message's
visibility itself when it answers with the message in ``batchItemFailures``.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from forwarder.events import SqsReceipt
from forwarder.work import WorkItem

__all__ = ["DEFAULT_RESERVE_SECONDS", "Continuation", "WorkQueueContinuation", "retry_delay"]

logger = logging.getLogger(__name__)

# Seconds kept for queueing the continuation, on top of the sender's own margin for the summary: the
# SQS client below gives up well within them (two attempts of at most 1 s to connect and 2 s to answer).
DEFAULT_RESERVE_SECONDS = 3.0

# A failed work item is received again after 1, 2, 4, 8 minutes...: time for a throttled or restarting
# endpoint to recover, and the dead-letter queue within half an hour at the queue's maxReceiveCount (5).
RETRY_FIRST_SECONDS = 60
RETRY_MAX_SECONDS = 900


def retry_delay(receive_count: int) -> int:
    """Seconds before a work item that failed on its ``receive_count``-th receive is received again."""
    return int(min(RETRY_FIRST_SECONDS * 2 ** (max(receive_count, 1) - 1), RETRY_MAX_SECONDS))


class Continuation(Protocol):
    """Queues the rest of a unit for a later invocation; False when it could not (the unit then fails)."""

    @property
    def reserve_seconds(self) -> float: ...

    def __call__(self, item: WorkItem) -> bool: ...

    def retry_later(self, receipt: SqsReceipt) -> None:
        """Make a failed message of the work queue visible again after ``retry_delay``; other queues'
        messages keep their own visibility timeout."""


class WorkQueueContinuation:
    """Sends work items to the stack's work queue (WORK_QUEUE_URL)."""

    __slots__ = ("_queue", "_queue_url", "_sqs", "reserve_seconds")

    def __init__(self, sqs: Any, queue_url: str, *, reserve_seconds: float = DEFAULT_RESERVE_SECONDS) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        # https://sqs.<region>.amazonaws.com/<account>/<name>: the account and name an ARN must end with.
        self._queue = tuple(queue_url.rstrip("/").rsplit("/", 2)[-2:])
        self.reserve_seconds = reserve_seconds

    def retry_later(self, receipt: SqsReceipt) -> None:
        if tuple(receipt.queue_arn.rsplit(":", 2)[-2:]) != self._queue:
            return
        delay = retry_delay(receipt.receive_count)
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self._queue_url, ReceiptHandle=receipt.receipt_handle, VisibilityTimeout=delay
            )
        except (ClientError, BotoCoreError) as exc:
            # Not fatal: the message comes back after the queue's visibility timeout instead.
            logger.warning("could not set the retry delay of a work item on %s: %s", self._queue_url, exc)
            return
        logger.info(
            "the failed work item is received again in %d s (receive %d)", delay, receipt.receive_count
        )

    def __call__(self, item: WorkItem) -> bool:
        try:
            self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=item.to_body())
        except (ClientError, BotoCoreError) as exc:
            # Falls back to failing the unit: its event is retried whole, nothing is lost.
            logger.error(
                "could not queue the rest of %s (from line %d) on %s: %s; the object fails instead",
                item.uri,
                item.start_line,
                self._queue_url,
                exc,
            )
            return False
        logger.info(
            "queued the rest of %s from line %d for invocation %d",
            item.uri,
            item.start_line,
            item.invocation,
            extra={"work_item": item.to_body()},
        )
        return True
