"""Hand the rest of an S3 object to a later invocation, through the stack's work queue.

An invocation that runs out of time part-way through an object (at 256 MB a Lambda gets about a seventh of
a vCPU; a file of millions of lines does not fit in one run) sends a work item naming the object version
and the first line not yet delivered to WORK_QUEUE_URL, and ends the object as ``continued``: its event
succeeds, and the queue's event source mapping starts the next invocation of the chain. The pipeline stops
``reserve_seconds`` earlier than it otherwise would, so there is time for the SendMessage call.

Only progress is handed on: an invocation that delivered no line of the object fails instead (its
work-queue message is received again, then moved to the dead-letter queue by the queue's redrive policy),
so a broken endpoint cannot make a chain that never ends.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from forwarder.work import WorkItem

__all__ = ["DEFAULT_RESERVE_SECONDS", "Continuation", "WorkQueueContinuation"]

logger = logging.getLogger(__name__)

# Seconds kept for queueing the continuation, on top of the sender's own margin for the summary: the
# SQS client below gives up well within them (two attempts of at most 1 s to connect and 2 s to answer).
DEFAULT_RESERVE_SECONDS = 3.0


class Continuation(Protocol):
    """Queues the rest of a unit for a later invocation; False when it could not (the unit then fails)."""

    @property
    def reserve_seconds(self) -> float: ...

    def __call__(self, item: WorkItem) -> bool: ...


class WorkQueueContinuation:
    """Sends work items to the stack's work queue (WORK_QUEUE_URL)."""

    __slots__ = ("_queue_url", "_sqs", "reserve_seconds")

    def __init__(self, sqs: Any, queue_url: str, *, reserve_seconds: float = DEFAULT_RESERVE_SECONDS) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self.reserve_seconds = reserve_seconds

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
