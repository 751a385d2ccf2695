"""The resource policy statements that let our topic and log groups invoke the forwarder function."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from provisioner.arns import FunctionArn
from provisioner.errors import error_code

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient


def _target(function: FunctionArn) -> dict[str, Any]:
    unqualified = function.arn.rsplit(":", 1)[0] if function.qualifier else function.arn
    target: dict[str, Any] = {"FunctionName": unqualified}
    if function.qualifier:
        target["Qualifier"] = function.qualifier
    return target


def allow_topic(
    lambda_: LambdaClient,
    function: FunctionArn,
    sid: str,
    topic_arn: str,
    *,
    replace: bool = False,
) -> None:
    """Allow sns.amazonaws.com to invoke the function for this topic only.

    With `replace` (in-place updates), our statement is removed first so it is re-created as specified.
    """
    # The topic ARN alone: it names the account. AWS documents AddPermission's SourceAccount for S3 and
    # SES sources; its SNS examples use SourceArn only.
    _allow(lambda_, function, sid, {"Principal": "sns.amazonaws.com", "SourceArn": topic_arn}, replace)


def allow_log_group(
    lambda_: LambdaClient,
    function: FunctionArn,
    sid: str,
    log_group_arn: str,
    account: str,
    *,
    replace: bool = False,
) -> None:
    """Allow logs.amazonaws.com to invoke the function for this log group only."""
    # AWS documents the CloudWatch Logs permission with SourceArn
    # arn:<partition>:logs:<region>:<account>:log-group:<name>:* and SourceAccount.
    source = {"Principal": "logs.amazonaws.com", "SourceArn": log_group_arn, "SourceAccount": account}
    _allow(lambda_, function, sid, source, replace)


def _allow(
    lambda_: LambdaClient, function: FunctionArn, sid: str, source: dict[str, str], replace: bool
) -> None:
    request: dict[str, Any] = {
        **_target(function),
        "StatementId": sid,
        "Action": "lambda:InvokeFunction",
        **source,
    }
    if replace:
        revoke(lambda_, function, sid)
    try:
        lambda_.add_permission(**request)
    except ClientError as exc:
        if error_code(exc) != "ResourceConflictException":
            raise
        # Our statement id is already there (an in-place update or a retried request): replace it.
        revoke(lambda_, function, sid)
        lambda_.add_permission(**request)


def revoke(lambda_: LambdaClient, function: FunctionArn, sid: str) -> bool:
    """Remove our statement; False when it (or the function) was already gone."""
    try:
        lambda_.remove_permission(**_target(function), StatementId=sid)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False
        raise
    return True
