"""crhelper's CfnResource with its known defects guarded.

- exactly one answer per request: the timeout timer's FAILED and the normal answer never both go out;
- our bounded HTTPS sender instead of crhelper's endless retry loop;
- the timeout fires with a real margin before the deadline (crhelper: 0.5 s);
- a failed request always carries a physical id our Delete understands (never a random one).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from crhelper import CfnResource

from provisioner import response
from provisioner.logs import log_event
from provisioner.naming import make_gen
from provisioner.state import Record, encode

logger = logging.getLogger(__name__)

FAILED = "FAILED"
Sender = Callable[[str, bytes], bool]


class GuardedResource(CfnResource):
    """Answers each CloudFormation request exactly once, in time, under the size limit."""

    # Set by crhelper for each request (its type stubs leave them out).
    _event: Any
    _context: Any
    _response_url: str
    _timer: threading.Timer | None

    def __init__(self, *, timeout_margin_seconds: float = 10.0, sender: Sender | None = None) -> None:
        self._answer_lock = threading.Lock()
        self._answered = False
        self._timeout_margin = timeout_margin_seconds
        self._sender: Sender = sender or response.send_response
        self.current_step = "start"
        self.last_answer: dict[str, Any] = {}
        super().__init__(json_logging=True, log_level="INFO", boto_level="WARNING", sleep_on_delete=0)

    def _crhelper_init(self, event: Mapping[str, Any], context: Any) -> bool:
        with self._answer_lock:
            self._answered = False
        self.current_step = "start"
        self.last_answer = {}
        return bool(super()._crhelper_init(event, context))  # type: ignore[misc]

    def _set_timeout(self) -> None:
        seconds = self._context.get_remaining_time_in_millis() / 1000.0 - self._timeout_margin
        self._timer = threading.Timer(max(seconds, 0.0), self._timeout)
        self._timer.daemon = True
        self._timer.start()

    def _timeout(self) -> None:
        log_event(logger, "timeout", logging.ERROR, step=self.current_step)
        self._send(
            FAILED,
            f"the provisioner ran out of time during '{self.current_step}' (its Lambda timeout is too short "
            f"or AWS was slow). What was changed so far is recorded in the physical id and the rollback "
            f"removes it; raise the provisioner function's timeout and retry",
        )

    def _fallback_physical_id(self) -> str:
        event = self._event or {}
        existing = event.get("PhysicalResourceId")
        if existing:
            return str(existing)
        gen = make_gen(str(event.get("StackId", "")), self.LogicalResourceId, self.RequestId)
        return encode(Record(gen=gen))

    def generate_physical_id(self, event: Any) -> str:
        """crhelper invents a random id when none was set; ours is one our Delete recognises."""
        return self._fallback_physical_id()

    def _send(self, status: str | None = None, reason: str = "", send_response: object = None) -> None:
        with self._answer_lock:
            if self._answered:
                log_event(logger, "second_answer_dropped", logging.WARNING, status=status or self.Status)
                return
            self._answered = True
        physical_id = self.PhysicalResourceId if isinstance(self.PhysicalResourceId, str) else ""
        final_status = status or self.Status
        body = response.build_body(
            status=final_status,
            reason=str(reason if status else self.Reason),
            physical_id=physical_id or self._fallback_physical_id(),
            stack_id=self.StackId,
            request_id=self.RequestId,
            logical_id=self.LogicalResourceId,
            data={str(k): str(v) for k, v in (self.Data or {}).items()} if final_status != FAILED else {},
        )
        self.last_answer = {"status": final_status, "bytes": len(body)}
        delivered = self._sender(self._response_url, body)
        self.last_answer["delivered"] = delivered
