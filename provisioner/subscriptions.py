"""CloudWatch Logs subscription filters that send log groups' events to the forwarder."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from provisioner.arns import Environment
from provisioner.deadline import Deadline
from provisioner.errors import PreconditionError, error_code, show
from provisioner.logs import log_event

# No type stubs for the CloudWatch Logs client are installed: it is typed as Any.
CloudWatchLogsClient = Any

logger = logging.getLogger(__name__)

# CloudWatch Logs allows at most two subscription filters per log group (a quota that cannot be raised).
MAX_FILTERS_PER_LOG_GROUP = 2
# PutSubscriptionFilter test-invokes the destination and fails with InvalidParameterException "Could not
# execute the lambda function" until the invoke permission just added is effective: retry for about 20 s.
PERMISSION_RETRY_DELAYS = (2.0, 4.0, 6.0, 8.0)
RETRY_SLEEP: Callable[[float], None] = time.sleep
_NOT_YET_INVOCABLE = "Could not execute the lambda function"


def log_group_arn(env: Environment, name: str) -> str:
    """The log group's ARN as CloudWatch Logs sends it as SourceArn (and as IAM matches it): `...:*`."""
    return f"arn:{env.partition}:logs:{env.region}:{env.account}:log-group:{name}:*"


def filter_names(logs_client: CloudWatchLogsClient, log_group: str) -> list[str] | None:
    """The names of the log group's subscription filters; None when the log group does not exist.

    DescribeSubscriptionFilters answers ResourceNotFoundException for a log group missing in this account
    and region, so it proves the log group exists with a permission scoped to that log group.
    """
    try:
        answer = logs_client.describe_subscription_filters(logGroupName=log_group)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    # At most two filters per log group: one page holds them all.
    return [f["filterName"] for f in answer.get("subscriptionFilters", []) if "filterName" in f]


def check(logs_client: CloudWatchLogsClient, env: Environment, log_group: str, ours: str) -> None:
    """Refuse, before any change, a log group that is missing or has no room for our filter."""
    names = filter_names(logs_client, log_group)
    if names is None:
        raise PreconditionError(
            f"log group {show(log_group)} does not exist in account {env.account} region {env.region}; "
            f"create it (or correct LogGroupNames) and retry"
        )
    if ours not in names and len(names) >= MAX_FILTERS_PER_LOG_GROUP:
        raise PreconditionError(
            f"log group {show(log_group)} already has {len(names)} subscription filters "
            f"({', '.join(show(n) for n in names)}), the most CloudWatch Logs allows; delete one of them "
            f"(aws logs delete-subscription-filter --log-group-name {show(log_group)} --filter-name <name>) "
            f"or remove the log group from LogGroupNames, then retry"
        )


def put(
    logs_client: CloudWatchLogsClient,
    log_group: str,
    *,
    name: str,
    pattern: str,
    destination_arn: str,
    deadline: Deadline,
) -> None:
    """Create or replace our filter; retried while the destination's new invoke permission propagates."""
    waited = 0.0
    for attempt, delay in enumerate((*PERMISSION_RETRY_DELAYS, None), start=1):
        try:
            logs_client.put_subscription_filter(
                logGroupName=log_group, filterName=name, filterPattern=pattern, destinationArn=destination_arn
            )
            return
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", ""))
            if error_code(exc) != "InvalidParameterException" or _NOT_YET_INVOCABLE not in message:
                raise
            if delay is None or deadline.remaining() - delay < deadline.reserve_seconds:
                raise PreconditionError(
                    f"CloudWatch Logs still could not invoke {show(destination_arn)} for log group "
                    f"{show(log_group)} after {attempt} attempts over {waited:.0f} s, although the "
                    f"invoke permission was added; retry the stack operation"
                ) from exc
            log_event(logger, "invoke_permission_not_effective_yet", logging.WARNING, attempt=attempt)
            RETRY_SLEEP(delay)
            waited += delay


def delete(logs_client: CloudWatchLogsClient, log_group: str, name: str) -> bool:
    """Remove our filter; False when it (or its log group) was already gone."""
    try:
        logs_client.delete_subscription_filter(logGroupName=log_group, filterName=name)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False
        raise
    return True
