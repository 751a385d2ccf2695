"""The load balancer: is it an ALB, where does it log, point its access logs somewhere."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from provisioner.deadline import Deadline
from provisioner.errors import PreconditionError, error_code, show
from provisioner.logs import log_event
from provisioner.naming import LOG_OWNER_GEN_TAG_KEY, STACK_TAG_KEY
from provisioner.state import AccessLogSettings

if TYPE_CHECKING:
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

logger = logging.getLogger(__name__)

ENABLED = "access_logs.s3.enabled"
BUCKET = "access_logs.s3.bucket"
PREFIX = "access_logs.s3.prefix"
_NOT_FOUND = frozenset({"LoadBalancerNotFound", "LoadBalancerNotFoundException"})
_TYPE_NAMES = {"network": "a network load balancer", "gateway": "a gateway load balancer"}


@dataclass(frozen=True, slots=True)
class LoadBalancer:
    """The few facts about the load balancer that matter here."""

    arn: str
    name: str
    lb_type: str


def describe(elbv2: ElasticLoadBalancingv2Client, arn: str) -> LoadBalancer | None:
    """The load balancer, or None when it does not exist (any other error propagates)."""
    try:
        found = elbv2.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"]
    except ClientError as exc:
        if error_code(exc) in _NOT_FOUND:
            return None
        raise
    if not found:
        return None
    item = found[0]
    return LoadBalancer(
        arn=item["LoadBalancerArn"], name=item.get("LoadBalancerName", ""), lb_type=item["Type"]
    )


def require_application(
    elbv2: ElasticLoadBalancingv2Client, arn: str, account: str, region: str
) -> LoadBalancer:
    """The load balancer must exist here and be an Application Load Balancer."""
    lb = describe(elbv2, arn)
    if lb is None:
        raise PreconditionError(
            f"load balancer {show(arn)} was not found in account {account}, region {region}; check "
            f"LoadBalancerArn (EC2 console > Load Balancers > Details > ARN)"
        )
    if lb.lb_type != "application":
        kind = _TYPE_NAMES.get(lb.lb_type, f"of type {show(lb.lb_type, 30)}")
        raise PreconditionError(
            f"load balancer {show(arn)} is {kind}; this stack supports Application Load Balancers "
            f"(ARN ...:loadbalancer/app/...)"
        )
    return lb


@dataclass(frozen=True, slots=True)
class LogOwner:
    """Which resource of this project last pointed the load balancer's access logs (from its tags)."""

    stack_id: str
    gen: str


def read_owner(elbv2: ElasticLoadBalancingv2Client, arn: str) -> LogOwner | None:
    """The owner the load balancer's tags name, None when they name none."""
    descriptions = elbv2.describe_tags(ResourceArns=[arn])["TagDescriptions"]
    tags = {t.get("Key", ""): t.get("Value", "") for d in descriptions for t in d.get("Tags", [])}
    stack_id = tags.get(STACK_TAG_KEY, "")
    if not stack_id:
        return None
    return LogOwner(stack_id=stack_id, gen=tags.get(LOG_OWNER_GEN_TAG_KEY, ""))


def write_owner(elbv2: ElasticLoadBalancingv2Client, arn: str, owner: LogOwner | None) -> None:
    """Tag the load balancer with its owner, or remove our tags (None). AddTags overwrites existing keys."""
    if owner is None:
        elbv2.remove_tags(ResourceArns=[arn], TagKeys=[STACK_TAG_KEY, LOG_OWNER_GEN_TAG_KEY])
    else:
        elbv2.add_tags(
            ResourceArns=[arn],
            Tags=[
                {"Key": STACK_TAG_KEY, "Value": owner.stack_id},
                {"Key": LOG_OWNER_GEN_TAG_KEY, "Value": owner.gen},
            ],
        )
    log_event(
        logger,
        "load_balancer_owner_set",
        stack_id=owner.stack_id if owner else "",
        gen=owner.gen if owner else "",
    )


def read_access_logs(elbv2: ElasticLoadBalancingv2Client, arn: str) -> AccessLogSettings:
    """The access_logs.s3.* attributes; a fresh ALB may not report them at all (read as off)."""
    attributes = elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
    values = {a.get("Key", ""): a.get("Value", "") for a in attributes}
    return AccessLogSettings(
        enabled=values.get(ENABLED, "false").lower() == "true",
        bucket=values.get(BUCKET, ""),
        prefix=values.get(PREFIX, ""),
    )


def try_read_access_logs(elbv2: ElasticLoadBalancingv2Client, arn: str) -> AccessLogSettings | None:
    """Like read_access_logs, None when the load balancer is gone."""
    try:
        return read_access_logs(elbv2, arn)
    except ClientError as exc:
        if error_code(exc) in _NOT_FOUND:
            return None
        raise


def write_access_logs(elbv2: ElasticLoadBalancingv2Client, arn: str, settings: AccessLogSettings) -> None:
    """Set all three attributes at once. ELB checks the bucket policy here and writes a test object."""
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=arn,
        Attributes=[
            {"Key": ENABLED, "Value": "true" if settings.enabled else "false"},
            {"Key": BUCKET, "Value": settings.bucket},
            {"Key": PREFIX, "Value": settings.prefix},
        ],
    )
    log_event(
        logger,
        "load_balancer_access_logs_set",
        enabled=settings.enabled,
        bucket=settings.bucket,
        prefix=settings.prefix,
    )


# ELB checks the bucket policy (by writing a test object) when logging is enabled. A policy written a
# moment earlier can take a few seconds to be honoured, and ELB then answers InvalidConfigurationRequest
# "Access Denied for bucket ...": retry that for about half a minute before giving up.
POLICY_PROPAGATION_DELAYS = (2.0, 4.0, 6.0, 8.0, 10.0)
RETRY_SLEEP: Callable[[float], None] = time.sleep


def _policy_not_visible_yet(exc: ClientError) -> bool:
    message = str(exc.response.get("Error", {}).get("Message", ""))
    return error_code(exc) == "InvalidConfigurationRequest" and "access denied" in message.lower()


def enable_access_logs(
    elbv2: ElasticLoadBalancingv2Client, arn: str, settings: AccessLogSettings, deadline: Deadline
) -> None:
    """write_access_logs, retrying while a just-written bucket policy is not yet visible to ELB."""
    for attempt, delay in enumerate((*POLICY_PROPAGATION_DELAYS, None), start=1):
        try:
            write_access_logs(elbv2, arn, settings)
        except ClientError as exc:
            if delay is None or not _policy_not_visible_yet(exc):
                raise
            if deadline.remaining() - delay < deadline.reserve_seconds:
                raise
            log_event(logger, "access_log_bucket_not_ready", logging.WARNING, attempt=attempt, retry_in=delay)
            RETRY_SLEEP(delay)
        else:
            return


def restore_access_logs(elbv2: ElasticLoadBalancingv2Client, arn: str, previous: AccessLogSettings) -> str:
    """Put back what was there; if ELB refuses (the old bucket is gone or denies), turn logging off.

    Returns what was done, for the log.
    """
    try:
        write_access_logs(elbv2, arn, previous)
    except ClientError as exc:
        if not previous.enabled or error_code(exc) != "InvalidConfigurationRequest":
            raise
        log_event(
            logger,
            "previous_access_log_destination_refused",
            logging.WARNING,
            bucket=previous.bucket,
            error=show(exc),
        )
        write_access_logs(elbv2, arn, AccessLogSettings(False, previous.bucket, previous.prefix))
        return "previous destination refused; access logs turned off"
    return "previous settings restored"
