"""The SNS topic that announces each new log file, its policy and its subscriptions."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from provisioner.arns import bucket_arn
from provisioner.errors import error_code
from provisioner.logs import log_event
from provisioner.properties import redact_url

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

logger = logging.getLogger(__name__)

_NOT_FOUND = frozenset({"NotFound", "NotFoundException", "ResourceNotFound", "ResourceNotFoundException"})


def is_not_found(exc: BaseException) -> bool:
    """True for 'this topic or subscription does not exist'."""
    return error_code(exc) in _NOT_FOUND


def publish_policy(partition: str, topic_arn: str, bucket: str, account: str) -> dict[str, Any]:
    """Only this bucket (aws:SourceArn) of this account (aws:SourceAccount) may publish, nobody else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowLogBucketNotifications",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "SNS:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "ArnLike": {"aws:SourceArn": bucket_arn(partition, bucket)},
                    "StringEquals": {"aws:SourceAccount": account},
                },
            }
        ],
    }


def create(sns: SNSClient, name: str) -> str:
    """Create the topic (idempotent for the same name and attributes); returns its ARN."""
    arn = sns.create_topic(Name=name)["TopicArn"]
    log_event(logger, "topic_created", topic=arn)
    return arn


def set_policy(sns: SNSClient, topic_arn: str, policy: dict[str, Any]) -> None:
    """Replace the topic's access policy."""
    sns.set_topic_attributes(TopicArn=topic_arn, AttributeName="Policy", AttributeValue=json.dumps(policy))


def subscriptions(sns: SNSClient, topic_arn: str) -> list[dict[str, str]] | None:
    """All subscriptions of the topic, None when the topic does not exist."""
    found: list[dict[str, str]] = []
    try:
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
            found.extend({k: str(v) for k, v in s.items()} for s in page.get("Subscriptions", []))
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise
    return found


def subscribe(sns: SNSClient, topic_arn: str, protocol: str, endpoint: str) -> str:
    """Subscribe an endpoint; an https endpoint must then confirm the subscription itself."""
    arn = sns.subscribe(TopicArn=topic_arn, Protocol=protocol, Endpoint=endpoint, ReturnSubscriptionArn=True)[
        "SubscriptionArn"
    ]
    shown = endpoint if protocol == "lambda" else redact_url(endpoint)
    log_event(logger, "subscribed", topic=topic_arn, protocol=protocol, endpoint=shown)
    return arn


def _unsubscribe(sns: SNSClient, subscription_arn: str) -> None:
    if not subscription_arn.startswith("arn:"):
        return  # a pending https subscription has no ARN yet; it goes away with the topic or expires
    try:
        sns.unsubscribe(SubscriptionArn=subscription_arn)
    except ClientError as exc:
        if not is_not_found(exc):
            raise


def converge_subscriptions(sns: SNSClient, topic_arn: str, desired: Iterable[tuple[str, str]]) -> None:
    """Make the topic's subscriptions exactly `desired` (protocol, endpoint) pairs."""
    wanted = set(desired)
    current = subscriptions(sns, topic_arn) or []
    present: set[tuple[str, str]] = set()
    for sub in current:
        key = (sub.get("Protocol", ""), sub.get("Endpoint", ""))
        if key in wanted and key not in present:
            present.add(key)
        else:
            _unsubscribe(sns, sub.get("SubscriptionArn", ""))
    for protocol, endpoint in sorted(wanted - present):
        subscribe(sns, topic_arn, protocol, endpoint)


def delete(sns: SNSClient, topic_arn: str) -> bool:
    """Delete the topic with its subscriptions; False when it was already gone.

    DeleteTopic removes every subscription of the topic itself, so no Unsubscribe calls are needed here
    (the SNS authorization reference is unclear on whether Unsubscribe can be scoped to a topic ARN).
    """
    if subscriptions(sns, topic_arn) is None:
        return False
    try:
        sns.delete_topic(TopicArn=topic_arn)
    except ClientError as exc:
        if is_not_found(exc):
            return False
        raise
    log_event(logger, "topic_deleted", topic=topic_arn)
    return True
