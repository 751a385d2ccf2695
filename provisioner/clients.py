"""The AWS clients the provisioner uses, created lazily (never at import time) and reused while warm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra="alb-log-onboarding-provisioner",
)


@dataclass(frozen=True, slots=True)
class Clients:
    """One client per service the provisioner calls."""

    elbv2: ElasticLoadBalancingv2Client
    s3: S3Client
    sns: SNSClient
    lambda_: LambdaClient


def make_clients(region: str) -> Clients:
    """Clients for `region` with bounded retries and timeouts."""
    session = boto3.session.Session(region_name=region)
    return Clients(
        elbv2=session.client("elbv2", config=_CONFIG),
        s3=session.client("s3", config=_CONFIG),
        sns=session.client("sns", config=_CONFIG),
        lambda_=session.client("lambda", config=_CONFIG),
    )
