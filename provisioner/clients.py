"""The AWS clients the provisioner uses, created lazily (never at import time) and reused while warm."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from provisioner.deadline import Deadline
from provisioner.errors import DENIED_AFTER_RETRY
from provisioner.logs import log_event

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.model import OperationModel
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

logger = logging.getLogger(__name__)

_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra="alb-log-onboarding-provisioner",
)

# CloudFormation creates or updates the provisioner's role just before it sends the request, and IAM is
# eventually consistent: for a few seconds (rarely longer) calls the new policy allows can still be denied.
IAM_PROPAGATION_SECONDS = 45.0
_MAX_DELAY = 8.0
# How each service answers "not allowed": S3 and ELBv2 AccessDenied (S3 HEAD requests carry no body, so
# only the status), Lambda and CloudWatch Logs AccessDeniedException, SNS AuthorizationError.
_DENIED = frozenset({"AccessDenied", "403", "AccessDeniedException", "AuthorizationError"})
# AWS names the action it denied in the message: "... is not authorized to perform: s3:CreateBucket ...".
_DENIED_ACTION = re.compile(r"not authorized to perform:?\s+([A-Za-z0-9-]+:[A-Za-z0-9]+)")
# Kept in the request's context, which botocore passes unchanged to every retry of one call.
_FIRST_DENIED = "provisioner_first_denied"
RETRY_SLEEP: Callable[[float], None] = time.sleep
CLOCK: Callable[[], float] = time.monotonic


class IamPropagationRetry:
    """Retries calls denied while IAM changes to the provisioner's own role propagate, for a bounded time.

    A botocore needs-retry handler, so it covers every call of every module alike. Closed unless a request
    opens it: only Create and Update follow a change to the role.
    """

    def __init__(self) -> None:
        self._until: float | None = None

    def open(self, deadline: Deadline, seconds: float = IAM_PROPAGATION_SECONDS) -> None:
        """Retry denied calls from now for `seconds`, never into the deadline's reserve."""
        self._until = CLOCK() + min(seconds, deadline.remaining() - deadline.reserve_seconds)

    def close(self) -> None:
        """Denied calls fail at once."""
        self._until = None

    def attach(self, client: BaseClient) -> None:
        """Handle the client's needs-retry event."""
        # A needs-retry handler returns the wait; botocore-stubs types every handler as returning None.
        client.meta.events.register(
            "needs-retry",
            self._needs_retry,  # type: ignore[arg-type]
            unique_id=f"iam-propagation-{id(self)}",
        )

    def _needs_retry(
        self,
        response: tuple[Any, dict[str, Any]] | None,
        attempts: int,
        operation: OperationModel,
        request_dict: dict[str, Any],
        **_: Any,
    ) -> float | None:
        """Seconds botocore waits before the retry (we sleep here, so 0), None to let the answer stand."""
        if response is None or self._until is None:
            return None
        parsed = response[1]
        error = parsed.get("Error", {})
        if str(error.get("Code", "")) not in _DENIED:
            return None
        now = CLOCK()
        first = request_dict.setdefault("context", {}).setdefault(_FIRST_DENIED, now)
        delay = min(2.0 ** (attempts - 1), _MAX_DELAY, self._until - now)
        if delay <= 0:
            if now > first:
                found = _DENIED_ACTION.search(str(error.get("Message", "")))
                action = found.group(1) if found else f"the permission {operation.name} needs"
                parsed[DENIED_AFTER_RETRY] = {"Seconds": round(now - first), "Action": action}
            return None
        log_event(
            logger,
            "access_denied_retry",
            logging.WARNING,
            operation=operation.name,
            attempt=attempts,
            wait=delay,
        )
        RETRY_SLEEP(delay)
        return 0


@dataclass(frozen=True, slots=True)
class Clients:
    """One client per service the provisioner calls, all retrying denials while the role propagates."""

    elbv2: ElasticLoadBalancingv2Client
    s3: S3Client
    sns: SNSClient
    lambda_: LambdaClient
    logs: Any  # CloudWatch Logs (no type stubs installed)
    iam_propagation: IamPropagationRetry = field(default_factory=IamPropagationRetry)

    def __post_init__(self) -> None:
        for client in (self.elbv2, self.s3, self.sns, self.lambda_, self.logs):
            self.iam_propagation.attach(client)


def make_clients(region: str) -> Clients:
    """Clients for `region` with bounded retries and timeouts."""
    session = boto3.session.Session(region_name=region)
    return Clients(
        elbv2=session.client("elbv2", config=_CONFIG),
        s3=session.client("s3", config=_CONFIG),
        sns=session.client("sns", config=_CONFIG),
        lambda_=session.client("lambda", config=_CONFIG),
        logs=session.client("logs", config=_CONFIG),
    )
