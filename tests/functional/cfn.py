"""CloudFormation's side of a custom resource, for functional tests of the provisioner.

- `ResponseReceiver` (the demo's, scripts/demo/demo_receiver.py): a real HTTPS server on 127.0.0.1
  (certificate from a private trustme CA) standing in for the pre-signed S3 URL CloudFormation hands out;
  it records every PUT.
- `Stack`: builds Create/Update/Delete events shaped exactly like CloudFormation's (every property a
  string, ServiceToken included, OldResourceProperties on Update).
- `FakeContext`: the Lambda context attributes the provisioner reads.
- `CustomResource`: sends an event through `provisioner.handler.handler` and returns the one answer.
- `World` / `build_world` / `snapshot`: an account in moto with a VPC, two ALBs, an NLB, a GWLB and the
  forwarder function, and a snapshot of everything the provisioner may touch.
"""

from __future__ import annotations

import functools
import io
import json
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError
from script_modules import load_script

ACCOUNT = "123456789012"
REGION = "us-east-1"
FUNCTION_NAME = "onboard-Provisioner-1A2B3C4D5E6F"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION_NAME}"
RESOURCE_TYPE = "Custom::AlbLogOnboarding"
LOGICAL_ID = "LogOnboarding"


# ------------------------------------------------------------------------------------------ receiver

# The demo's receiver: one HTTPS stand-in for the response URL, for the demo and the tests alike.
_receivers = load_script("demo/demo_receiver")
Put = _receivers.Put
ResponseReceiver = _receivers.ResponseReceiver


# ---------------------------------------------------------------------------------------------- events


class FakeContext:
    """The Lambda context attributes the provisioner uses."""

    function_name = FUNCTION_NAME
    invoked_function_arn = FUNCTION_ARN
    memory_limit_in_mb = 256

    def __init__(self, seconds: float = 300.0) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._end = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._end - time.monotonic()) * 1000), 0)


def default_properties(load_balancer_arn: str, forwarder_arn: str, **overrides: str) -> dict[str, str]:
    """Every property the template passes, as strings ("" = not set)."""
    props = {
        "LoadBalancerArn": load_balancer_arn,
        "BucketName": "",
        "Prefix": "",
        "ForwarderFunctionArn": forwarder_arn,
        "SubscriptionEndpoint": "",
        "ReaderPrincipalArn": "",
        "RetainBucket": "false",
        "LogRetentionDays": "30",
        "LogGroupNames": "",
        "LogGroupFilterPattern": "",
    }
    props.update(overrides)
    return props


class Stack:
    """A stack holding one Custom::AlbLogOnboarding resource; builds the events CloudFormation sends."""

    def __init__(self, receiver: ResponseReceiver, name: str = "weblogs", region: str = REGION) -> None:
        self.receiver = receiver
        self.name = name
        self.stack_id = f"arn:aws:cloudformation:{region}:{ACCOUNT}:stack/{name}/{uuid.uuid4()}"

    def event(
        self,
        request_type: str,
        props: dict[str, str],
        *,
        physical_id: str | None = None,
        old_props: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        assert all(isinstance(v, str) for v in props.values()), (
            "CloudFormation sends every property as a string"
        )
        request_id = str(uuid.uuid4())
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": FUNCTION_ARN,
            "ResponseURL": self.receiver.url_for(request_id),
            "StackId": self.stack_id,
            "RequestId": request_id,
            "ResourceType": RESOURCE_TYPE,
            "LogicalResourceId": LOGICAL_ID,
            "ResourceProperties": {"ServiceToken": FUNCTION_ARN, **props},
        }
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        if old_props is not None:
            event["OldResourceProperties"] = {"ServiceToken": FUNCTION_ARN, **old_props}
        return event


@dataclass(frozen=True)
class Answer:
    """What CloudFormation received."""

    status: str
    reason: str
    physical_id: str
    data: dict[str, str]
    document: dict[str, Any]
    size: int


class CustomResource:
    """Drives the real handler and collects its one answer per request."""

    def __init__(self, stack: Stack, clients: Any = None) -> None:
        self.stack = stack
        self.receiver = stack.receiver
        self.clients = clients

    def send(self, event: dict[str, Any], *, seconds: float = 300.0) -> Answer:
        from provisioner import handler

        handler.handler(event, FakeContext(seconds))
        return self.answer_of(event)

    def answer_of(self, event: dict[str, Any], wait: float = 5.0) -> Answer:
        deadline = time.monotonic() + wait
        while not self.receiver.puts_for(event["RequestId"]) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.02)
        puts = self.receiver.puts_for(event["RequestId"])
        assert len(puts) == 1, f"expected exactly one answer, got {len(puts)}"
        put = puts[0]
        assert put.method == "PUT"
        assert put.headers.get("content-type", None) == ""
        assert len(put.body) < 4096
        doc = put.json()
        assert doc["StackId"] == event["StackId"]
        assert doc["RequestId"] == event["RequestId"]
        assert doc["LogicalResourceId"] == event["LogicalResourceId"]
        assert doc["PhysicalResourceId"], "the physical id is required, even on FAILED"
        assert len(doc["PhysicalResourceId"].encode()) <= 1024
        return Answer(
            status=doc["Status"],
            reason=doc.get("Reason", ""),
            physical_id=doc["PhysicalResourceId"],
            data=doc.get("Data", {}),
            document=doc,
            size=len(put.body),
        )

    def create(self, props: dict[str, str]) -> Answer:
        return self.send(self.stack.event("Create", props))

    def update(self, physical_id: str, props: dict[str, str], old_props: dict[str, str]) -> Answer:
        return self.send(self.stack.event("Update", props, physical_id=physical_id, old_props=old_props))

    def delete(self, physical_id: str, props: dict[str, str]) -> Answer:
        return self.send(self.stack.event("Delete", props, physical_id=physical_id))


# ----------------------------------------------------------------------------------------------- world


@dataclass
class World:
    """An account in moto with what the provisioner works on."""

    region: str
    elbv2: Any
    s3: Any
    sns: Any
    lambda_: Any
    alb_arn: str = ""
    alb2_arn: str = ""
    nlb_arn: str = ""
    gwlb_arn: str = ""
    forwarder_arn: str = ""
    subnets: list[str] = field(default_factory=list)
    logs: Any = None

    def access_logs(self, arn: str) -> dict[str, str]:
        """access_logs.s3.*; a fresh moto ALB lacks `enabled`, which real AWS reports as "false"."""
        attributes = self.elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
        values = {a["Key"]: a["Value"] for a in attributes if a["Key"].startswith("access_logs.s3.")}
        values.setdefault("access_logs.s3.enabled", "false")
        return values

    def set_access_logs(self, arn: str, bucket: str, prefix: str, enabled: bool = True) -> None:
        self.elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=arn,
            Attributes=[
                {"Key": "access_logs.s3.enabled", "Value": "true" if enabled else "false"},
                {"Key": "access_logs.s3.bucket", "Value": bucket},
                {"Key": "access_logs.s3.prefix", "Value": prefix},
            ],
        )

    def load_balancer_tags(self, arn: str) -> dict[str, str]:
        descriptions = self.elbv2.describe_tags(ResourceArns=[arn])["TagDescriptions"]
        return {t["Key"]: t["Value"] for d in descriptions for t in d.get("Tags", [])}

    def policy(self, bucket: str) -> dict[str, Any] | None:
        try:
            parsed: dict[str, Any] = json.loads(self.s3.get_bucket_policy(Bucket=bucket)["Policy"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchBucketPolicy":
                return None
            raise
        return parsed

    def notifications(self, bucket: str) -> dict[str, Any]:
        config = dict(self.s3.get_bucket_notification_configuration(Bucket=bucket))
        config.pop("ResponseMetadata", None)
        return config

    def bucket_names(self) -> list[str]:
        return sorted(b["Name"] for b in self.s3.list_buckets()["Buckets"])

    def topics(self) -> list[str]:
        return sorted(t["TopicArn"] for t in self.sns.list_topics()["Topics"])

    def subscriptions(self) -> list[tuple[str, str, str]]:
        subs = self.sns.list_subscriptions()["Subscriptions"]
        return sorted((s["TopicArn"], s["Protocol"], s["Endpoint"]) for s in subs)

    def subscription_filters(self) -> dict[str, list[dict[str, Any]]]:
        """The subscription filters of every log group that has some, without their creation times.

        (moto test-invokes the destination function, which creates the function's own log group.)
        """
        groups = self.logs.describe_log_groups()["logGroups"]
        out = {}
        for name in sorted(g["logGroupName"] for g in groups):
            filters = self.logs.describe_subscription_filters(logGroupName=name)["subscriptionFilters"]
            if not filters:
                continue
            out[name] = sorted(
                ({k: v for k, v in f.items() if k != "creationTime"} for f in filters),
                key=lambda f: str(f["filterName"]),
            )
        return out

    def lambda_policy(self) -> list[dict[str, Any]]:
        try:
            policy = json.loads(self.lambda_.get_policy(FunctionName=self.forwarder_arn)["Policy"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return []
            raise
        statements: list[dict[str, Any]] = policy.get("Statement", [])
        return statements


def moto_s3() -> Any:
    """moto's S3 backend: object writes that moto would refuse under a TLS-only policy (it sees no TLS)."""
    from moto.s3.models import s3_backends

    return s3_backends[ACCOUNT]["aws"]


def emulate_eventbridge_reads(s3: Any) -> None:
    """Make this client's GetBucketNotificationConfiguration report EventBridgeConfiguration like AWS does.

    moto stores the EventBridge switch on Put but leaves it out of Get; real S3 returns it, and the
    provisioner must write it back untouched.
    """
    from moto.s3.models import s3_backends

    def remember_bucket(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["notification_bucket"] = params.get("Bucket")

    def add_eventbridge(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        bucket = s3_backends[ACCOUNT]["aws"].buckets.get(context.get("notification_bucket"))
        config = bucket.notification_configuration if bucket is not None else None
        if config is not None and config.event_bridge is not None:
            parsed["EventBridgeConfiguration"] = {}

    s3.meta.events.register("provide-client-params.s3.GetBucketNotificationConfiguration", remember_bucket)
    s3.meta.events.register("after-call.s3.GetBucketNotificationConfiguration", add_eventbridge)


@functools.cache
def _session() -> boto3.session.Session:
    return boto3.session.Session()


def client(service: str, region: str = REGION) -> Any:
    """A boto3 client from one shared session, so service models are parsed once per test run.

    Create clients after moto started; the fake credentials come from the environment.
    """
    return _session().client(service, region_name=region)


def provisioner_clients(region: str = REGION) -> Any:
    """The provisioner's clients, built like `make_clients` but from the shared session."""
    from provisioner.clients import Clients

    return Clients(
        elbv2=client("elbv2", region),
        s3=client("s3", region),
        sns=client("sns", region),
        lambda_=client("lambda", region),
        logs=client("logs", region),
    )


def build_world(region: str = REGION) -> World:
    """VPC, two ALBs, an NLB, a GWLB and a forwarder function (moto must be running)."""
    ec2 = client("ec2", region)
    elbv2 = client("elbv2", region)
    s3 = client("s3", region)
    emulate_eventbridge_reads(s3)
    world = World(
        region=region,
        elbv2=elbv2,
        s3=s3,
        sns=client("sns", region),
        lambda_=client("lambda", region),
        logs=client("logs", region),
    )
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    world.subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{region}{zone}")[
            "Subnet"
        ]["SubnetId"]
        for i, zone in enumerate("ab", start=1)
    ]

    def make(name: str, lb_type: str) -> str:
        lbs = elbv2.create_load_balancer(Name=name, Subnets=world.subnets, Type=lb_type)["LoadBalancers"]
        return str(lbs[0]["LoadBalancerArn"])

    world.alb_arn = make("web", "application")
    world.alb2_arn = make("api", "application")
    world.nlb_arn = make("tcp", "network")
    world.gwlb_arn = make("inspect", "gateway")

    iam = client("iam", region)
    role = iam.create_role(
        RoleName="forwarder-role",
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
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    world.forwarder_arn = world.lambda_.create_function(
        FunctionName="weblogs-Forwarder",
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": code.getvalue()},
    )["FunctionArn"]
    return world


def snapshot(world: World) -> dict[str, Any]:
    """Everything the provisioner may change, in comparable form."""
    buckets: dict[str, Any] = {}
    for name in world.bucket_names():
        try:
            tags = world.s3.get_bucket_tagging(Bucket=name)["TagSet"]
        except ClientError:
            tags = None
        try:
            lifecycle = world.s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
        except ClientError:
            lifecycle = None
        buckets[name] = {
            "policy": world.policy(name),
            "notifications": world.notifications(name),
            "tags": tags,
            "lifecycle": lifecycle,
        }
    return {
        "load_balancers": {arn: world.access_logs(arn) for arn in (world.alb_arn, world.alb2_arn)},
        "load_balancer_tags": {arn: world.load_balancer_tags(arn) for arn in (world.alb_arn, world.alb2_arn)},
        "buckets": buckets,
        "topics": world.topics(),
        "subscriptions": world.subscriptions(),
        "forwarder_policy": world.lambda_policy(),
        "subscription_filters": world.subscription_filters(),
    }
