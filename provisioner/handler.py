"""Lambda entry point of the Custom::AlbLogOnboarding resource: an adapter around `lifecycle`.

It turns the CloudFormation event into typed values, gets the (lazily created, cached) clients, calls one
lifecycle function and lets the guarded crhelper resource turn the result or the error into the answer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from provisioner import lifecycle
from provisioner.arns import ArnError, Environment
from provisioner.cfn_resource import GuardedResource
from provisioner.clients import Clients, make_clients
from provisioner.deadline import Deadline
from provisioner.errors import ProvisionError, describe_aws_error
from provisioner.logs import log_event

logger = logging.getLogger(__name__)

# Stop starting new steps when less than this is left, so undo and the answer still fit in time.
STEP_RESERVE_SECONDS = 25.0
# The timeout answer goes out this long before Lambda would kill the function.
TIMEOUT_MARGIN_SECONDS = 10.0

_lock = threading.Lock()
_helper: GuardedResource | None = None
_clients: Clients | None = None


def get_clients(region: str) -> Clients:
    """The cached clients (created on first use, reused while the function stays warm)."""
    global _clients  # noqa: PLW0603 - a per-container cache
    with _lock:
        if _clients is None:
            _clients = make_clients(region)
        return _clients


def set_clients(clients: Clients | None) -> None:
    """Use these clients (tests), or None to create them again on the next request."""
    global _clients  # noqa: PLW0603 - a per-container cache
    with _lock:
        _clients = clients


def get_helper() -> GuardedResource:
    """The crhelper resource, built on first use.

    crhelper's constructor creates lambda/events/logs clients for its polling mode (unused here; creating a
    client makes no request). Built lazily, it runs inside Lambda where AWS_REGION is always set, never at
    import time; without a region crhelper records an init failure and every request is answered FAILED.
    """
    global _helper  # noqa: PLW0603 - a per-container cache
    with _lock:
        if _helper is None:
            helper = GuardedResource(timeout_margin_seconds=TIMEOUT_MARGIN_SECONDS)
            helper.create(_on_create)
            helper.update(_on_update)
            helper.delete(_on_delete)
            _helper = helper
        return _helper


def handler(event: Mapping[str, Any], context: Any) -> None:
    """Lambda handler: answer the CloudFormation request exactly once."""
    started = time.monotonic()
    helper = get_helper()
    helper(event, context)
    log_event(
        logger,
        "invocation_summary",
        request_type=str(event.get("RequestType", "")),
        logical_id=str(event.get("LogicalResourceId", "")),
        status=helper.last_answer.get("status", ""),
        answer_delivered=helper.last_answer.get("delivered", False),
        answer_bytes=helper.last_answer.get("bytes", 0),
        last_step=helper.current_step,
        seconds=round(time.monotonic() - started, 3),
    )


# -------------------------------------------------------------------------------------------------


def _context_of(event: Mapping[str, Any], context: Any) -> lifecycle.RequestContext:
    """Account and partition from the invoked function's ARN, region from AWS_REGION (Lambda sets it)."""
    try:
        from_arn = Environment.from_function_arn(str(context.invoked_function_arn))
    except ArnError as exc:
        raise ProvisionError(f"cannot tell the account and region this function runs in: {exc}") from exc
    env = Environment(from_arn.partition, os.environ.get("AWS_REGION") or from_arn.region, from_arn.account)
    return lifecycle.RequestContext(
        stack_id=str(event["StackId"]),
        request_id=str(event["RequestId"]),
        logical_id=str(event["LogicalResourceId"]),
        env=env,
    )


def _deadline(context: Any) -> Deadline:
    return Deadline(context.get_remaining_time_in_millis, reserve_seconds=STEP_RESERVE_SECONDS)


def _progress(step: str) -> None:
    helper = get_helper()
    helper.current_step = step


def _set_physical_id(physical_id: str) -> None:
    get_helper().PhysicalResourceId = physical_id


def _guard(action: Callable[[], str]) -> str:
    """Let ProvisionError reasons through; give anything unexpected a reason a person can act on."""
    try:
        return action()
    except ProvisionError:
        raise
    except Exception as exc:
        error = describe_aws_error(exc)
        log_event(logger, "unexpected_error", logging.ERROR, error=error)
        raise ProvisionError(
            f"unexpected error in the provisioner ({error}); see its CloudWatch log"
        ) from exc


def _answer(outcome: lifecycle.Outcome) -> str:
    """Hand the outcome's data to the answer; its physical id becomes the resource's."""
    get_helper().Data.update(outcome.data)
    return outcome.physical_id


def _on_create(event: Mapping[str, Any], context: Any) -> str:
    ctx = _context_of(event, context)
    return _guard(
        lambda: _answer(
            lifecycle.create(
                get_clients(ctx.env.region),
                ctx,
                raw_props=event.get("ResourceProperties") or {},
                deadline=_deadline(context),
                on_physical_id=_set_physical_id,
                progress=_progress,
            )
        )
    )


def _on_update(event: Mapping[str, Any], context: Any) -> str:
    ctx = _context_of(event, context)
    return _guard(
        lambda: _answer(
            lifecycle.update(
                get_clients(ctx.env.region),
                ctx,
                physical_id=str(event.get("PhysicalResourceId", "")),
                raw_props=event.get("ResourceProperties") or {},
                raw_old_props=event.get("OldResourceProperties") or {},
                deadline=_deadline(context),
                on_physical_id=_set_physical_id,
                progress=_progress,
            )
        )
    )


def _on_delete(event: Mapping[str, Any], context: Any) -> str:
    physical_id = str(event.get("PhysicalResourceId", ""))
    _set_physical_id(physical_id)
    ctx = _context_of(event, context)

    def run() -> str:
        lifecycle.delete(
            get_clients(ctx.env.region),
            ctx,
            physical_id=physical_id,
            raw_props=event.get("ResourceProperties") or {},
            deadline=_deadline(context),
            progress=_progress,
        )
        return physical_id

    return _guard(run)
