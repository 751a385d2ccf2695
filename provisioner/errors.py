"""Typed errors of the provisioner; the message of each is the reason CloudFormation shows the user."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SHOWN_MAX = 200
# Set by provisioner.clients on an AWS error answer still "access denied" after retrying while IAM
# changes to the role propagated: {"Seconds": <retried for>, "Action": <the IAM action denied>}.
DENIED_AFTER_RETRY = "ProvisionerDeniedAfterRetry"


class ProvisionError(Exception):
    """Base class: the message is written for the person reading the stack events."""


class InvalidPropertiesError(ProvisionError):
    """One or more resource properties are unusable; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("Invalid properties: " + " | ".join(problems))


class PreconditionError(ProvisionError):
    """The account's current state does not allow the change (missing ALB, KMS bucket, rule conflict...)."""


class StepError(ProvisionError):
    """An AWS call failed while changing something; carries the step for the reason."""

    def __init__(self, step: str, detail: str) -> None:
        self.step = step
        self.detail = detail
        super().__init__(f"step '{step}' failed: {detail}")


class DeadlineError(ProvisionError):
    """Not enough time is left in this invocation to start or finish a step safely."""


class ConcurrentChangeError(ProvisionError):
    """Another writer kept replacing a shared document (bucket policy, notifications) while we merged ours."""


class PhysicalIdError(ProvisionError):
    """The physical id cannot carry the record it must carry."""


def show(value: object, limit: int = _SHOWN_MAX) -> str:
    """Untrusted text made safe for a log line or a reason: no control characters, bounded length."""
    text = _CONTROL.sub("?", str(value))
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, '' for anything else."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def describe_aws_error(exc: BaseException) -> str:
    """'Code: message' for AWS errors, the exception type and text for anything else."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        op = getattr(exc, "operation_name", "") or "call"
        code = show(err.get("Code", "Unknown"))
        text = f"{op} returned {code}: {show(err.get('Message', ''), 300)}"
        retried = cast(Mapping[str, Any], exc.response).get(DENIED_AFTER_RETRY)
        if retried:
            text += (
                f"; still {code} after retrying for {retried['Seconds']} s; IAM changes to the provisioner "
                f"role may not have propagated, or the role lacks {show(retried['Action'], 100)}"
            )
        return text
    if isinstance(exc, BotoCoreError):
        return f"{type(exc).__name__}: {show(exc, 300)}"
    if isinstance(exc, ProvisionError):
        return show(exc, 600)
    return f"{type(exc).__name__}: {show(exc, 300)}"
