"""The embedded AWS side of the demo: moto's server, the starting account, snapshots, the Lambda stand-in.

moto answers the AWS APIs on 127.0.0.1 (boto3 reaches it through AWS_ENDPOINT_URL, with credentials
that are valid nowhere else). It delivers S3 -> SNS -> SQS, but cannot run Lambda code without Docker,
so the demo plays the Lambda service: an SQS queue subscribed to the topic collects what SNS would hand
the forwarder, and each message is wrapped the way Lambda wraps an SNS notification.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto import settings as moto_settings
from moto.server import ThreadedMotoServer

ACCOUNT = "123456789012"  # moto's default account
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "demo-not-a-real-key",
    "AWS_SECRET_ACCESS_KEY": "demo-not-a-real-secret",  # valid only for the embedded AWS
    "AWS_SESSION_TOKEN": "demo",
}
LOOPBACK = "127.0.0.1,localhost"


class EmbeddedAws:
    """moto's ThreadedMotoServer on 127.0.0.1, with this process's boto3 pointed at it."""

    def __init__(self, region: str) -> None:
        self.region = region
        self._server: Any = None
        self.endpoint = ""

    def start(self) -> str:
        # No profile, credential file or per-service endpoint of the user's may send a call elsewhere,
        # and no proxy may sit between boto3 and 127.0.0.1.
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            del os.environ[name]
        for name in ("NO_PROXY", "no_proxy"):
            os.environ[name] = ",".join(filter(None, (os.environ.get(name), LOOPBACK)))
        os.environ.update(FAKE_CREDENTIALS)
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = self.region
        # Without this, moto builds ~1300 sample machine images the first time EC2 is used.
        os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
        # moto logs every request it serves, and complains whenever SNS hands a message to the forwarder
        # function (it would run it in Docker; there is none, and the demo plays Lambda instead).
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        logging.getLogger("moto.awslambda").setLevel(logging.CRITICAL)
        # moto looks for a Docker host once, printing a warning when there is none; ask now, silently.
        with contextlib.redirect_stdout(io.StringIO()):
            moto_settings.moto_server_host()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        os.environ["AWS_ENDPOINT_URL"] = self.endpoint
        return self.endpoint

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def client(service: str) -> Any:
    """A boto3 client for the embedded AWS (endpoint, region and credentials come from the environment)."""
    return boto3.client(service)  # type: ignore[call-overload]


# ---------------------------------------------------------------------------------------- the account


@dataclass(slots=True)
class Account:
    """What the demo created before the stack: the customer's load balancer and its existing logging."""

    region: str
    vpc_id: str = ""
    subnets: list[str] = field(default_factory=list)
    zones: list[str] = field(default_factory=list)
    alb_arn: str = ""
    alb_name: str = ""
    alb_id: str = ""
    target_group_arn: str = ""
    node_ips: list[str] = field(default_factory=list)
    log_bucket: str = ""
    log_prefix: str = ""
    secret_arn: str = ""
    forwarder_arn: str = ""
    forwarder_name: str = ""
    log_group: str = ""


def create_network_and_alb(account: Account, name: str) -> None:
    """A VPC, two subnets in two zones and an internet-facing application load balancer."""
    ec2, elbv2 = client("ec2"), client("elbv2")
    account.vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    for i, zone in enumerate(("a", "b"), start=1):
        subnet = ec2.create_subnet(
            VpcId=account.vpc_id, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{account.region}{zone}"
        )["Subnet"]
        account.subnets.append(subnet["SubnetId"])
        account.zones.append(subnet["AvailabilityZone"])
        # One load balancer node per zone; each writes its own log files, named with its address.
        account.node_ips.append(f"10.20.{i}.{17 + 40 * i}")
    balancer = elbv2.create_load_balancer(
        Name=name, Subnets=account.subnets, Type="application", Scheme="internet-facing"
    )["LoadBalancers"][0]
    account.alb_arn = balancer["LoadBalancerArn"]
    # arn:...:loadbalancer/app/<name>/<id>
    _, _, account.alb_name, account.alb_id = account.alb_arn.split(":", 5)[5].split("/")
    account.target_group_arn = elbv2.create_target_group(
        Name=f"{name}-targets", Protocol="HTTP", Port=80, VpcId=account.vpc_id, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]


def enable_existing_logging(account: Account, bucket: str, prefix: str) -> None:
    """The customer's starting point: the load balancer already logs to their own SSE-S3 bucket.

    The bucket policy is the one the AWS documentation tells users to write (the ELB log delivery service
    may put objects under the prefix); the demo shows the stack leaves it exactly as it found it.
    """
    s3, elbv2 = client("s3"), client("elbv2")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowAlbLogDelivery",
                "Effect": "Allow",
                "Principal": {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/{prefix}/AWSLogs/{ACCOUNT}/*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=account.alb_arn,
        Attributes=[
            {"Key": "access_logs.s3.enabled", "Value": "true"},
            {"Key": "access_logs.s3.bucket", "Value": bucket},
            {"Key": "access_logs.s3.prefix", "Value": prefix},
        ],
    )
    account.log_bucket, account.log_prefix = bucket, prefix


def create_log_group(account: Account, name: str) -> None:
    """A log group of the customer's, with one stream that an application writes to."""
    client("logs").create_log_group(logGroupName=name)
    account.log_group = name


def store_token(account: Account, name: str, token: str) -> None:
    """The ingest credential in Secrets Manager; the forwarder gets only its ARN."""
    account.secret_arn = client("secretsmanager").create_secret(
        Name=name, SecretString=token, Description="Bearer token of the demo's ingest receiver"
    )["ARN"]


def create_forwarder_function(account: Account, stack_name: str, settings: Mapping[str, Any]) -> None:
    """The forwarder function and its role, as the stack would create them.

    `settings` are the function's resolved template properties (Handler, Runtime, MemorySize, Timeout,
    Environment ...). moto keeps the code but cannot run it: the demo calls forwarder.handler itself.
    """
    iam, lambda_ = client("iam"), client("lambda")
    role = iam.create_role(
        RoleName=f"{stack_name}-ForwarderRole-{uuid.uuid4().hex[:12].upper()}",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    account.forwarder_name = f"{stack_name}-ForwarderFunction-{uuid.uuid4().hex[:12].upper()}"
    kwargs: dict[str, Any] = {
        "FunctionName": account.forwarder_name,
        "Role": role,
        "Code": {"ZipFile": _forwarder_zip()},
        "Handler": settings["Handler"],
        "Runtime": settings["Runtime"],
        "MemorySize": int(settings["MemorySize"]),
        "Timeout": int(settings["Timeout"]),
        "Environment": {"Variables": {k: str(v) for k, v in settings["Environment"]["Variables"].items()}},
    }
    if "Architectures" in settings:
        kwargs["Architectures"] = list(settings["Architectures"])
    account.forwarder_arn = lambda_.create_function(**kwargs)["FunctionArn"]


def create_work_queue(stack_name: str) -> str:
    """The stack's work queue (files handed on part-way, backfill items); its URL, what Ref gives."""
    name = f"{stack_name}-WorkQueue-{uuid.uuid4().hex[:12].upper()}"
    return str(client("sqs").create_queue(QueueName=name)["QueueUrl"])


def _forwarder_zip() -> bytes:
    """The forwarder package's sources, zipped (moto stores the code; nothing runs it)."""
    root = Path(__file__).resolve().parents[2]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((root / "forwarder").rglob("*.py")):
            archive.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


# -------------------------------------------------------------------------------------------- snapshot


def snapshot(account: Account) -> dict[str, Any]:
    """Everything the stack may touch, keyed so a difference names the statement, rule or topic."""
    elbv2, s3, sns, lambda_ = client("elbv2"), client("s3"), client("sns"), client("lambda")
    attributes = elbv2.describe_load_balancer_attributes(LoadBalancerArn=account.alb_arn)["Attributes"]
    buckets: dict[str, Any] = {}
    for bucket in sorted(b["Name"] for b in s3.list_buckets()["Buckets"]):
        try:
            policy: Any = _by_sid(json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]))
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchBucketPolicy":
                raise
            policy = None
        config = s3.get_bucket_notification_configuration(Bucket=bucket)
        rules = {
            f"{kind} {rule.get('Id', i)}": rule
            for kind in ("TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations")
            for i, rule in enumerate(config.get(kind, []))
        }
        buckets[bucket] = {"policy": policy, "notification rules": rules}
    try:
        function_policy = _by_sid(
            json.loads(lambda_.get_policy(FunctionName=account.forwarder_arn)["Policy"])
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        function_policy = {}
    logs = client("logs")
    # The customer's log group (the forwarder's own appears once it runs, and the stack does not own it).
    filters = {
        name: {
            f["filterName"]: f.get("destinationArn")
            for f in logs.describe_subscription_filters(logGroupName=name)["subscriptionFilters"]
        }
        for name in filter(None, (account.log_group,))
    }
    return {
        "load balancer attributes": {a["Key"]: a["Value"] for a in attributes},
        "log group subscription filters": filters,
        "buckets": buckets,
        "topics": {t["TopicArn"]: "exists" for t in sns.list_topics()["Topics"]},
        "subscriptions": {
            f"{s['Protocol']}:{s['Endpoint']}": f"on {s['TopicArn']}"
            for s in sns.list_subscriptions()["Subscriptions"]
        },
        "forwarder resource policy": function_policy,
    }


def _by_sid(policy: Mapping[str, Any]) -> dict[str, Any]:
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    return {str(s.get("Sid", f"#{i}")): s for i, s in enumerate(statements)}


def diff(before: Any, after: Any, path: str = "", *, values: bool = True) -> Iterator[str]:
    """Short human-readable differences between two snapshots (`values`: show what was added/removed)."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            where = f"{path} > {key}" if path else str(key)
            if key not in before:
                yield f"+ {where}: {_short(after[key])}" if values else f"+ {where}"
            elif key not in after:
                yield f"- {where}: {_short(before[key])}" if values else f"- {where}"
            else:
                yield from diff(before[key], after[key], where, values=values)
    elif before != after:
        yield f"~ {path}: {_short(before)} -> {_short(after)}"


def _short(value: Any, limit: int = 110) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------- the Lambda stand-in


class LambdaStandIn:
    """Collects what SNS delivers to the forwarder and hands it over the way the Lambda service does.

    The SNS -> SQS copy of a notification carries the same fields as the one SNS gives Lambda, spelled
    SigningCertURL/UnsubscribeURL instead of ...Url; the event Lambda builds holds one record per
    notification, with the subscription ARN of the forwarder's own subscription.
    """

    def __init__(self, topic_arn: str, function_arn: str) -> None:
        self.topic_arn = topic_arn
        self.function_arn = function_arn
        self._sqs, self._sns = client("sqs"), client("sns")
        self.queue_url = self._sqs.create_queue(QueueName=f"demo-lambda-stand-in-{uuid.uuid4().hex[:8]}")[
            "QueueUrl"
        ]
        queue_arn = self._sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.subscription_arn = self._sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)[
            "SubscriptionArn"
        ]
        self.forwarder_subscription = self._function_subscription()

    def _function_subscription(self) -> str:
        pages = self._sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=self.topic_arn)
        for page in pages:
            for sub in page["Subscriptions"]:
                if sub["Protocol"] == "lambda" and sub["Endpoint"] == self.function_arn:
                    return str(sub["SubscriptionArn"])
        raise LookupError(f"the topic has no lambda subscription for {self.function_arn}")

    def receive(self, wait_seconds: int = 1) -> list[tuple[str, dict[str, Any]]]:
        """Pending notifications as (receipt handle, Lambda event)."""
        answer = self._sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        )
        return [
            (m["ReceiptHandle"], self.lambda_event(json.loads(m["Body"]))) for m in answer.get("Messages", [])
        ]

    def done(self, receipt_handle: str) -> None:
        self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt_handle)

    def lambda_event(self, envelope: Mapping[str, Any]) -> dict[str, Any]:
        """The event the Lambda service passes a function subscribed to the topic."""
        return {
            "Records": [
                {
                    "EventSource": "aws:sns",
                    "EventVersion": "1.0",
                    "EventSubscriptionArn": self.forwarder_subscription,
                    "Sns": {
                        "Type": envelope.get("Type", "Notification"),
                        "MessageId": envelope["MessageId"],
                        "TopicArn": envelope["TopicArn"],
                        # S3 publishes its notifications with this subject; moto leaves it out.
                        "Subject": envelope.get("Subject") or "Amazon S3 Notification",
                        "Message": envelope["Message"],
                        "Timestamp": envelope["Timestamp"],
                        "SignatureVersion": envelope.get("SignatureVersion", "1"),
                        "Signature": envelope.get("Signature", ""),
                        "SigningCertUrl": envelope.get("SigningCertURL", ""),
                        "UnsubscribeUrl": envelope.get("UnsubscribeURL", ""),
                        "MessageAttributes": envelope.get("MessageAttributes") or {},
                    },
                }
            ]
        }

    def remove(self) -> None:
        """Unsubscribe and delete the queue, so the account holds only what the stack made."""
        self._sns.unsubscribe(SubscriptionArn=self.subscription_arn)
        self._sqs.delete_queue(QueueUrl=self.queue_url)


@dataclass(slots=True)
class FakeLambdaContext:
    """The context attributes the handlers read; remaining time counts down from the function timeout."""

    function_name: str
    invoked_function_arn: str
    timeout_seconds: float
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self._started = time.monotonic()

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000), 0)
