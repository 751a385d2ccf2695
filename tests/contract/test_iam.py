"""IAM: each role may make exactly the calls its code makes, on exactly the resources of this stack.

The provisioner's and forwarder's boto3 calls are read from their source (tests/contract/aws_calls.py);
the template's policies are resolved for concrete stacks and evaluated with IAM's matching rules.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

import pytest

from forwarder.config import SIGV4_SERVICES

from .aws_calls import (
    FORWARDER_CALLS,
    FORWARDER_MODULE_CALLS,
    FORWARDER_SERVICES,
    PROVISIONER_CALLS,
    PROVISIONER_SERVICES,
    Need,
    lambda_modules,
    needs,
    scan,
)
from .template_model import ACCOUNT, Stack, allows, partition_of

ENDPOINT = "https://logs.example.com/v1/ingest"
SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:ingest-token-AbCdEf"
CUSTOM_RESOURCE = "OnboardingResource"
GEO_BUCKET = "geo-data.example"
GEO_CITY_KEY = "maxmind/GeoLite2-City.mmdb"
GEO_ASN_KEY = "maxmind/GeoLite2-ASN.mmdb"
GEN = "0a1b2c3d"
LOG_GROUPS = "/aws/lambda/api,/ecs/web#1"
OTHER_ACCOUNT = "999988887777"
# Actions the Lambda service needs for the function's own logs; no project code calls them.
RUNTIME_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}
# What the Lambda service does with the function's role for an SQS event source mapping (receive, delete
# what succeeded, read the queue's attributes, and change visibility); no project code calls them.
EVENT_SOURCE_MAPPING_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ChangeMessageVisibility",
)
# Needs that exist only for a bucket the stack creates and may delete.
CREATED_BUCKET_ONLY = {"created-bucket", "object-cleanup"}


def alb_arn(region: str = "us-east-1") -> str:
    partition = partition_of(region)
    return f"arn:{partition}:elasticloadbalancing:{region}:{ACCOUNT}:loadbalancer/app/web/50dc6c495c0c9188"


def make_stack(region: str = "us-east-1", bucket: str = "", prefix: str = "", **parameters: str) -> Stack:
    """A stack whose custom resource answered bucket/prefix (as the provisioner would)."""
    parameters.setdefault("LoadBalancerArn", alb_arn(region))
    s = Stack(parameters=parameters, region=region)
    topic = f"arn:{s.partition}:sns:{region}:{ACCOUNT}:{s.stack_name}-alb-logs-{GEN}"
    s.attributes = {
        (CUSTOM_RESOURCE, "BucketName"): bucket,
        (CUSTOM_RESOURCE, "Prefix"): prefix,
        (CUSTOM_RESOURCE, "TopicArn"): topic,
    }
    return s


@cache
def provisioner_needs() -> dict[Need, list[str]]:
    return needs(scan("provisioner", PROVISIONER_SERVICES), PROVISIONER_CALLS)


@cache
def forwarder_needs() -> dict[Need, list[str]]:
    return needs(scan("forwarder", FORWARDER_SERVICES), FORWARDER_CALLS, FORWARDER_MODULE_CALLS)


def naming() -> Any:
    return importlib.import_module("provisioner.naming")


def created_bucket_name(s: Stack) -> str:
    return str(naming().default_bucket_name(s.account, s.region, s.pseudo("AWS::StackId")))


def provisioner_resources(s: Stack, bucket: str) -> dict[str, str]:
    """A concrete resource ARN for each kind of need, as the provisioner would touch it."""
    p = s.partition
    topic = f"arn:{p}:sns:{s.region}:{s.account}:{naming().topic_name(s.stack_name, GEN)}"
    key = f"AWSLogs/{s.account}/elasticloadbalancing/{s.region}/2025/01/31/x.log.gz"
    return {
        "any": "*",
        "load-balancer": s.values["LoadBalancerArn"],
        "bucket": f"arn:{p}:s3:::{bucket}",
        "created-bucket": f"arn:{p}:s3:::{bucket}",
        "object-cleanup": f"arn:{p}:s3:::{bucket}/{key}",
        "topic": topic,
        "subscription": f"{topic}:5d8b0c4e-3f7a-4b8e-9a61-2c1d7e6f9a0b",
        "function": s.properties(CUSTOM_RESOURCE)["ForwarderFunctionArn"],
        "log-group": log_group_arn(s, "/ecs/web#1"),
    }


def log_group_arn(s: Stack, name: str, region: str = "") -> str:
    """The ARN IAM checks log group actions against."""
    return f"arn:{s.partition}:logs:{region or s.region}:{s.account}:log-group:{name}:*"


# Actions S3 authorises for a bucket that does not exist yet (CreateBucket with ObjectOwnership also needs
# PutBucketOwnershipControls): there is no owner to compare, so s3:ResourceAccount may be absent.
BUCKET_CREATION = {"s3:CreateBucket", "s3:PutBucketOwnershipControls"}


def s3_context(action: str, account: str = ACCOUNT, region: str = "us-east-1") -> dict[str, str]:
    """The condition keys a request carries: s3:ResourceAccount (S3), aws:RequestedRegion (every request)."""
    context = {"aws:RequestedRegion": region}
    if action.startswith("s3:") and action not in BUCKET_CREATION:
        context["s3:ResourceAccount"] = account
    return context


def scenario_stacks() -> list[Stack]:
    """Stacks that together take every branch of every condition the policies use."""
    return [
        make_stack(),
        make_stack(
            IngestEndpoint=ENDPOINT,
            RetainLogBucket="false",
            LogBucketName="team-alb-logs",
            LogGroupNames=LOG_GROUPS,
            AuthType="bearer",
            AuthSecret="token",
        ),
        make_stack(
            region="us-gov-west-1",
            bucket="legacy-alb-logs",
            prefix="prod/web",
            IngestEndpoint=ENDPOINT,
            AuthType="apikey",
            AuthSecretArn=SECRET_ARN.replace("arn:aws:", "arn:aws-us-gov:").replace(
                "us-east-1", "us-gov-west-1"
            ),
            ForwarderReservedConcurrency="5",
        ),
    ]


def every_statement() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for s in scenario_stacks():
        for role in ("ProvisionerRole", "ForwarderRole"):
            if s.exists(role):
                out.extend((role, st) for st in s.role_statements(role))
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- shape of every statement ----------------------------------------------------------------------------
def test_no_statement_grants_a_wildcard_action() -> None:
    for role, st in every_statement():
        for action in as_list(st["Action"]):
            assert "*" not in action and "?" not in action, f"{role} grants {action}"


def test_resource_star_only_where_aws_allows_nothing_narrower() -> None:
    for role, st in every_statement():
        if "*" in as_list(st["Resource"]):
            # ELBv2 Describe* actions have no resource-level permissions.
            assert all(a.startswith("elasticloadbalancing:Describe") for a in as_list(st["Action"])), (
                role,
                st,
            )


def test_statements_only_allow() -> None:
    for role, st in every_statement():
        assert st["Effect"] == "Allow", role
        assert "NotAction" not in st and "NotResource" not in st, role


# -- the scan itself ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("package", "loaded", "not_loaded"),
    [
        ("provisioner", {"handler.py", "lifecycle.py", "bucket.py", "topic.py"}, set()),
        ("forwarder", {"handler.py", "source.py", "auth.py", "alb.py"}, {"cli.py", "__main__.py"}),
    ],
)
def test_scan_reads_the_modules_the_lambda_loads(
    package: str, loaded: set[str], not_loaded: set[str]
) -> None:
    names = {p.name for p in lambda_modules(package)}
    assert loaded <= names
    assert not (not_loaded & names)


# -- provisioner -----------------------------------------------------------------------------------------
def test_provisioner_code_makes_calls_in_every_area_the_role_covers() -> None:
    """Guards the scan itself: if it found nothing, every coverage test below would pass vacuously."""
    kinds = {kind for _, kind in provisioner_needs()}
    assert {
        "any",
        "load-balancer",
        "bucket",
        "created-bucket",
        "object-cleanup",
        "topic",
        "function",
        "log-group",
    } <= kinds


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-2", "us-gov-west-1", "cn-north-1"])
def test_provisioner_may_make_every_call_on_a_bucket_it_creates(region: str) -> None:
    s = make_stack(region=region, IngestEndpoint=ENDPOINT, RetainLogBucket="false", LogGroupNames=LOG_GROUPS)
    statements = s.role_statements("ProvisionerRole")
    resources = provisioner_resources(s, created_bucket_name(s))
    for (action, kind), where in provisioner_needs().items():
        assert allows(statements, action, resources[kind], s3_context(action, region=region)), (
            f"{action} on {kind} ({where[0]})"
        )


def test_provisioner_may_make_every_call_on_a_named_bucket() -> None:
    s = make_stack(
        IngestEndpoint=ENDPOINT,
        RetainLogBucket="false",
        LogBucketName="team-alb-logs",
        LogGroupNames=LOG_GROUPS,
    )
    statements = s.role_statements("ProvisionerRole")
    mine = provisioner_resources(s, "team-alb-logs")
    other = provisioner_resources(s, "payments-data")
    for (action, kind), where in provisioner_needs().items():
        assert allows(statements, action, mine[kind], s3_context(action)), f"{action} on {kind} ({where[0]})"
        if kind in CREATED_BUCKET_ONLY:
            assert not allows(statements, action, other[kind], s3_context(action)), action


def test_provisioner_may_configure_but_never_create_or_delete_a_reused_bucket() -> None:
    s = make_stack(IngestEndpoint=ENDPOINT, RetainLogBucket="false", LogGroupNames=LOG_GROUPS)
    statements = s.role_statements("ProvisionerRole")
    reused = provisioner_resources(s, "legacy-alb-logs")
    for (action, kind), where in provisioner_needs().items():
        allowed = allows(statements, action, reused[kind], s3_context(action))
        if kind in CREATED_BUCKET_ONLY:
            assert not allowed, f"{action} must not reach a bucket the stack did not create"
        else:
            assert allowed, f"{action} on {kind} ({where[0]})"


@pytest.mark.parametrize("bucket_name", ["", "team-alb-logs"])
def test_kept_buckets_are_never_emptied(bucket_name: str) -> None:
    s = make_stack(IngestEndpoint=ENDPOINT, RetainLogBucket="true", LogBucketName=bucket_name)
    statements = s.role_statements("ProvisionerRole")
    bucket = bucket_name or created_bucket_name(s)
    cleanup = [a for (a, kind) in provisioner_needs() if kind == "object-cleanup"]
    assert cleanup
    for action in cleanup:
        assert not allows(statements, action, f"arn:aws:s3:::{bucket}/AWSLogs/x.log.gz", s3_context(action))
    # Deleting the (empty) bucket stays possible: a Create that fails after creating it undoes it.
    assert allows(statements, "s3:DeleteBucket", f"arn:aws:s3:::{bucket}", s3_context("s3:DeleteBucket"))


def test_provisioner_cannot_touch_buckets_of_another_account() -> None:
    s = make_stack(IngestEndpoint=ENDPOINT, RetainLogBucket="false")
    statements = s.role_statements("ProvisionerRole")
    resources = provisioner_resources(s, created_bucket_name(s))
    for action, kind in provisioner_needs():
        # Creating a bucket makes it this account's; a name another account holds answers BucketAlreadyExists.
        if action.startswith("s3:") and action not in BUCKET_CREATION:
            assert not allows(statements, action, resources[kind], s3_context(action, OTHER_ACCOUNT)), action


def test_bucket_creation_never_depends_on_the_resource_account_key() -> None:
    for role, st in every_statement():
        keys = {k.lower() for tests in st.get("Condition", {}).values() for k in tests}
        if "s3:resourceaccount" in keys:
            assert not BUCKET_CREATION & set(as_list(st["Action"])), (role, st.get("Sid"))


@pytest.mark.parametrize("bucket_name", ["", "team-alb-logs"])
def test_the_provisioner_creates_only_the_buckets_it_may_own(bucket_name: str) -> None:
    s = make_stack(LogBucketName=bucket_name)
    statements = s.role_statements("ProvisionerRole")
    mine = f"arn:aws:s3:::{bucket_name or created_bucket_name(s)}"
    for action in BUCKET_CREATION:
        assert allows(statements, action, mine)
        for other in ("arn:aws:s3:::payments-data", "arn:aws:s3:::alb-logs-999988887777-us-east-1-0a1b2c3d"):
            assert not allows(statements, action, other), (action, other)


def test_provisioner_changes_only_application_load_balancers_of_this_account_and_region() -> None:
    s = make_stack()
    statements = s.role_statements("ProvisionerRole")
    action = "elasticloadbalancing:ModifyLoadBalancerAttributes"
    assert allows(statements, action, alb_arn())
    # Another ALB of the same account and region: the one a stack update replaced (see the next test).
    assert allows(statements, action, alb_arn().replace("app/web/", "app/shop/"))
    for other in (
        alb_arn().replace("app/web/", "net/web/"),
        alb_arn().replace("app/web/", "gwy/web/"),
        alb_arn().replace(ACCOUNT, OTHER_ACCOUNT),
        alb_arn().replace("us-east-1", "eu-west-1"),
    ):
        assert not allows(statements, action, other), other


def test_provisioner_tags_load_balancers_only_with_its_own_keys() -> None:
    s = make_stack()
    statements = s.role_statements("ProvisionerRole")
    names = naming()
    ours = {"aws:TagKeys": [names.STACK_TAG_KEY, names.LOG_OWNER_GEN_TAG_KEY]}
    tag_actions = [a for (a, _) in provisioner_needs() if a.endswith(("AddTags", "RemoveTags"))]
    assert sorted(tag_actions) == ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"]
    for action in tag_actions:
        assert allows(statements, action, alb_arn(), ours), action
        assert allows(statements, action, alb_arn().replace("app/web/", "app/shop/"), ours), action
        for keys in (["Owner"], [names.STACK_TAG_KEY, "CostCenter"]):
            assert not allows(statements, action, alb_arn(), {"aws:TagKeys": keys}), (action, keys)
        for other in (alb_arn().replace("app/web/", "net/web/"), alb_arn().replace(ACCOUNT, OTHER_ACCOUNT)):
            assert not allows(statements, action, other, ours), (action, other)


def test_after_an_update_replaces_load_balancer_and_bucket_the_old_resource_can_still_be_undone() -> None:
    """CloudFormation deletes the old custom resource after the role already has the new stack's policy."""
    old = make_stack(IngestEndpoint=ENDPOINT, RetainLogBucket="false", LogGroupNames=LOG_GROUPS)
    new = make_stack(
        IngestEndpoint=ENDPOINT,
        RetainLogBucket="false",
        LogGroupNames=LOG_GROUPS,
        LoadBalancerArn=alb_arn().replace("app/web/", "app/web-v2/"),
        LogBucketName="team-alb-logs",
    )
    statements = new.role_statements("ProvisionerRole")
    undo = provisioner_resources(old, created_bucket_name(old))
    for (action, kind), where in provisioner_needs().items():
        assert allows(statements, action, undo[kind], s3_context(action)), f"{action} on {kind} ({where[0]})"


def test_after_log_bucket_name_changes_a_created_named_bucket_can_be_kept_but_not_deleted() -> None:
    """Why the provisioner refuses that rename unless RetainLogBucket is true (provisioner/lifecycle.py)."""
    old = make_stack(
        IngestEndpoint=ENDPOINT, RetainLogBucket="false", LogGroupNames=LOG_GROUPS, LogBucketName="first-logs"
    )
    new = make_stack(
        IngestEndpoint=ENDPOINT,
        RetainLogBucket="false",
        LogGroupNames=LOG_GROUPS,
        LogBucketName="second-logs",
    )
    before = old.role_statements("ProvisionerRole")
    after = new.role_statements("ProvisionerRole")
    first = provisioner_resources(old, "first-logs")
    for (action, kind), where in provisioner_needs().items():
        assert allows(before, action, first[kind], s3_context(action)), f"{action} on {kind} ({where[0]})"
        # Keeping the old bucket needs only what the role may do on any bucket of the account.
        allowed_after = allows(after, action, first[kind], s3_context(action))
        assert allowed_after is (kind not in CREATED_BUCKET_ONLY), (action, kind)


def test_provisioner_manages_only_topics_named_for_this_stack() -> None:
    s = make_stack()
    statements = s.role_statements("ProvisionerRole")
    topic_actions = [a for (a, kind) in provisioner_needs() if kind in ("topic", "subscription")]
    assert topic_actions
    for name in ("other-stack-alb-logs-0a1b2c3d", "web-logs-alerts", "alb-logs-0a1b2c3d"):
        arn = f"arn:aws:sns:us-east-1:{ACCOUNT}:{name}"
        for action in topic_actions:
            assert not allows(statements, action, arn), (action, name)
    mine = f"arn:aws:sns:us-east-1:{ACCOUNT}:{naming().topic_name(s.stack_name, GEN)}"
    assert allows(statements, "sns:CreateTopic", mine)
    assert not allows(statements, "sns:CreateTopic", mine.replace("us-east-1", "eu-west-1"))


def test_provisioner_may_grant_invoke_on_the_forwarder_only() -> None:
    s = make_stack(IngestEndpoint=ENDPOINT)
    statements = s.role_statements("ProvisionerRole")
    function_actions = [a for (a, kind) in provisioner_needs() if kind == "function"]
    forwarder = s.get_att("ForwarderFunction", "Arn")
    other = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:payments"
    for action in function_actions:
        assert allows(statements, action, forwarder)
        assert not allows(statements, action, other)


def test_without_a_forwarder_the_provisioner_gets_no_lambda_permission() -> None:
    s = make_stack()
    assert not any(
        a.startswith("lambda:") for st in s.role_statements("ProvisionerRole") for a in as_list(st["Action"])
    )


def test_provisioner_role_grants_nothing_its_code_does_not_use() -> None:
    s = make_stack(IngestEndpoint=ENDPOINT, RetainLogBucket="false", LogGroupNames=LOG_GROUPS)
    granted = {a for st in s.role_statements("ProvisionerRole") for a in as_list(st["Action"])}
    used = {action for action, _ in provisioner_needs()}
    assert granted - RUNTIME_ACTIONS - used == set()


# How each service answers a call IAM does not allow (S3 HEAD requests carry only the status).
DENIED_CODES = {
    "elasticloadbalancing": ["AccessDenied"],
    "s3": ["AccessDenied", "403"],
    "sns": ["AuthorizationError"],
    "lambda": ["AccessDeniedException"],
    "logs": ["AccessDeniedException"],
}


class DeniedHttp:
    """The HTTP side of a 403 answer, as botocore's retry handlers read it."""

    def __init__(self) -> None:
        self.status_code = 403
        self.headers: dict[str, str] = {}


def test_every_provisioner_client_waits_for_role_changes_to_propagate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CloudFormation changes the role right before Create and Update: each client retries denials."""
    dataclasses = importlib.import_module("dataclasses")
    clients_mod = importlib.import_module("provisioner.clients")
    deadline = importlib.import_module("provisioner.deadline")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setattr(clients_mod, "RETRY_SLEEP", lambda _: None)
    clients = clients_mod.make_clients("us-east-1")
    clients.iam_propagation.open(deadline.Deadline.unlimited())
    services = set()
    for f in dataclasses.fields(clients):
        client = getattr(clients, f.name)
        if not hasattr(client, "meta"):
            continue
        model = client.meta.service_model
        services.add(model.signing_name)
        operation = model.operation_model(model.operation_names[0])
        for code in DENIED_CODES[model.signing_name]:
            responses = client.meta.events.emit(
                f"needs-retry.{model.service_id.hyphenize()}.{operation.name}",
                response=(DeniedHttp(), {"Error": {"Code": code, "Message": ""}}),
                endpoint=None,
                operation=operation,
                attempts=1,
                caught_exception=None,
                request_dict={"context": {}},
            )
            assert any(r is not None for _, r in responses), (f.name, code)
    # Every service the provisioner's code calls has such a client.
    assert services == {action.split(":")[0] for action, _ in provisioner_needs()}


@pytest.mark.parametrize("region", ["us-east-1", "us-gov-west-1", "cn-north-1"])
def test_provisioner_manages_subscription_filters_of_the_named_log_groups_only(region: str) -> None:
    s = make_stack(region=region, IngestEndpoint=ENDPOINT, LogGroupNames=LOG_GROUPS)
    statements = s.role_statements("ProvisionerRole")
    actions = [a for (a, kind) in provisioner_needs() if kind == "log-group"]
    assert actions
    context = s3_context("logs:", region=region)
    for action in actions:
        for name in LOG_GROUPS.split(","):
            assert allows(statements, action, log_group_arn(s, name), context), (action, name)
        for other in ("/aws/lambda/api2", "/aws/lambda", "/ecs/web#1/x", "payments"):
            assert not allows(statements, action, log_group_arn(s, other), context), (action, other)
        # The same name in another region of the account is not ours (the request goes to that region).
        elsewhere = "eu-west-1" if region == "us-east-1" else "us-east-1"
        there = log_group_arn(s, "/aws/lambda/api", elsewhere)
        assert not allows(statements, action, there, s3_context(action, region=elsewhere)), action


def test_without_log_groups_the_provisioner_gets_no_log_group_permission() -> None:
    for s in (make_stack(IngestEndpoint=ENDPOINT), make_stack(LogGroupNames=LOG_GROUPS)):
        assert not any(
            a.startswith("logs:") and a not in RUNTIME_ACTIONS
            for st in s.role_statements("ProvisionerRole")
            for a in as_list(st["Action"])
        )


def test_provisioner_writes_only_its_own_logs() -> None:
    s = make_stack()
    statements = s.role_statements("ProvisionerRole")
    group = s.get_att("ProvisionerLogGroup", "Arn").removesuffix(":*")
    assert allows(statements, "logs:PutLogEvents", f"{group}:log-stream:2025/01/31/[$LATEST]abc")
    assert not allows(statements, "logs:PutLogEvents", f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:other:*")


class RecordingLambda:
    """Stands in for the Lambda client: records the AddPermission requests."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def add_permission(self, **request: Any) -> None:
        self.requests.append(request)

    def remove_permission(self, **request: Any) -> None:
        return None


@pytest.mark.parametrize("qualifier", ["", ":live"])
def test_topic_invoke_permission_names_the_topic_only(qualifier: str) -> None:
    """AWS documents SourceAccount for S3 and SES sources; for SNS its examples use the topic ARN alone."""
    arns = importlib.import_module("provisioner.arns")
    lambda_permission = importlib.import_module("provisioner.lambda_permission")
    env = arns.Environment(partition="aws", region="us-east-1", account=ACCOUNT)
    function = arns.parse_function_arn(f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fwd{qualifier}", env)
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:web-logs-alb-logs-{GEN}"
    client = RecordingLambda()
    lambda_permission.allow_topic(client, function, "sid", topic)
    (request,) = client.requests
    assert request["Principal"] == "sns.amazonaws.com"
    assert request["SourceArn"] == topic
    assert "SourceAccount" not in request
    for s in scenario_stacks():
        for logical_id, res in s.template["Resources"].items():
            if res["Type"] == "AWS::Lambda::Permission" and s.exists(logical_id):
                props = s.properties(logical_id)
                if props["Principal"] == "sns.amazonaws.com":
                    assert "SourceAccount" not in props and props.get("SourceArn"), logical_id


# -- forwarder -------------------------------------------------------------------------------------------
def forwarder_read_resources(s: Stack) -> list[str]:
    return [
        r
        for st in s.role_statements("ForwarderRole")
        if "s3:GetObject" in as_list(st["Action"])
        for r in as_list(st["Resource"])
    ]


@pytest.mark.parametrize(
    ("region", "prefix", "expected"),
    [
        ("us-east-1", "", f"arn:aws:s3:::logs-bkt/AWSLogs/{ACCOUNT}/*"),
        ("us-east-1", "prod/web", f"arn:aws:s3:::logs-bkt/prod/web/AWSLogs/{ACCOUNT}/*"),
        ("cn-north-1", "alb", f"arn:aws-cn:s3:::logs-bkt/alb/AWSLogs/{ACCOUNT}/*"),
        ("us-gov-west-1", "", f"arn:aws-us-gov:s3:::logs-bkt/AWSLogs/{ACCOUNT}/*"),
    ],
)
def test_forwarder_reads_exactly_the_log_path_the_provisioner_chose(
    region: str, prefix: str, expected: str
) -> None:
    s = make_stack(region=region, bucket="logs-bkt", prefix=prefix, IngestEndpoint=ENDPOINT)
    assert forwarder_read_resources(s) == [expected]


@pytest.mark.parametrize("prefix", ["", "prod/web"])
def test_forwarder_may_read_log_files_and_nothing_else(prefix: str) -> None:
    s = make_stack(bucket="logs-bkt", prefix=prefix, IngestEndpoint=ENDPOINT)
    statements = s.role_statements("ForwarderRole")
    base = f"{prefix}/AWSLogs/{ACCOUNT}" if prefix else f"AWSLogs/{ACCOUNT}"
    log_key = (
        f"{base}/elasticloadbalancing/us-east-1/2025/01/31/"
        f"{ACCOUNT}_elasticloadbalancing_us-east-1_app.web.50dc6c495c0c9188_20250131T0005Z_10.0.1.5_abc.log.gz"
    )
    assert allows(statements, "s3:GetObject", f"arn:aws:s3:::logs-bkt/{log_key}")
    assert allows(statements, "s3:GetObjectVersion", f"arn:aws:s3:::logs-bkt/{log_key}")
    for key in (
        "payroll.csv",
        f"AWSLogs/{OTHER_ACCOUNT}/elasticloadbalancing/x.log.gz",
        f"prod/web-old/AWSLogs/{ACCOUNT}/x.log.gz",
        f"other/AWSLogs/{ACCOUNT}/x.log.gz",
    ):
        if key.startswith(base):
            continue
        assert not allows(statements, "s3:GetObject", f"arn:aws:s3:::logs-bkt/{key}"), key
    assert not allows(statements, "s3:GetObject", f"arn:aws:s3:::other-bkt/{log_key}")
    granted = {a for st in statements for a in as_list(st["Action"]) if a.startswith("s3:")}
    assert granted == {"s3:GetObject", "s3:GetObjectVersion"}


def test_forwarder_code_needs_are_granted() -> None:
    s = make_stack(
        bucket="logs-bkt",
        IngestEndpoint=ENDPOINT,
        AuthType="bearer",
        AuthSecretArn=SECRET_ARN,
        GeoIpDatabase=f"s3://{GEO_BUCKET}/{GEO_CITY_KEY}",
    )
    statements = s.role_statements("ForwarderRole")
    env = s.properties("ForwarderFunction")["Environment"]["Variables"]
    key = f"arn:aws:s3:::logs-bkt/AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-1/2025/01/31/x.log.gz"
    kinds = set()
    for (action, kind), where in forwarder_needs().items():
        kinds.add(kind)
        if kind == "log-object":
            assert allows(statements, action, key), (action, where[0])
        elif kind == "secret":
            assert allows(statements, action, SECRET_ARN), (action, where[0])
        elif kind == "work-queue":
            assert allows(statements, action, s.get_att("WorkQueue", "Arn")), (action, where[0])
        elif kind == "geo-database":
            assert allows(statements, action, f"arn:aws:s3:::{GEO_BUCKET}/{GEO_CITY_KEY}"), (action, where[0])
        elif kind == "parameter":
            # SSM parameters are a credential source for other deployments; this template never sets it.
            assert "HTTP_AUTH_PARAMETER_NAME" not in env
            assert not allows(statements, action, f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/x")
        else:
            raise AssertionError(f"unexpected need {action} ({kind})")
    assert {"log-object", "secret", "geo-database", "work-queue"} <= kinds


@pytest.mark.parametrize(
    ("parameters", "readable"),
    [
        ({"GeoIpDatabase": f"s3://{GEO_BUCKET}/{GEO_CITY_KEY}"}, [GEO_CITY_KEY]),
        ({"GeoIpAsnDatabase": f"s3://{GEO_BUCKET}/{GEO_ASN_KEY}"}, [GEO_ASN_KEY]),
        (
            {
                "GeoIpDatabase": f"s3://{GEO_BUCKET}/{GEO_CITY_KEY}",
                "GeoIpAsnDatabase": f"s3://{GEO_BUCKET}/{GEO_ASN_KEY}",
            },
            [GEO_CITY_KEY, GEO_ASN_KEY],
        ),
        ({}, []),
    ],
)
def test_forwarder_reads_only_the_geo_databases_it_is_given(
    parameters: dict[str, str], readable: list[str]
) -> None:
    s = make_stack(region="eu-west-1", IngestEndpoint=ENDPOINT, **parameters)
    statements = s.role_statements("ForwarderRole")
    for key in (GEO_CITY_KEY, GEO_ASN_KEY, "maxmind/other.mmdb", "payroll.csv"):
        assert allows(statements, "s3:GetObject", f"arn:aws:s3:::{GEO_BUCKET}/{key}") == (key in readable), (
            key
        )
        assert not allows(statements, "s3:GetObjectVersion", f"arn:aws:s3:::{GEO_BUCKET}/{key}")
    env = s.properties("ForwarderFunction")["Environment"]["Variables"]
    uris = [f"s3://{GEO_BUCKET}/{key}" for key in readable]
    if not readable:
        assert "GEOIP_DATABASE_S3_URI" not in env
    else:
        # The forwarder skips the empty item of a parameter left empty.
        assert [item for item in env["GEOIP_DATABASE_S3_URI"].split(",") if item] == uris


@pytest.mark.parametrize(
    ("parameters", "readable"),
    [
        ({"AuthType": "bearer", "AuthSecretArn": SECRET_ARN}, SECRET_ARN),
        ({"AuthType": "bearer", "AuthSecret": "token"}, "created"),
        ({}, None),
    ],
)
def test_forwarder_reads_only_its_one_secret(parameters: dict[str, str], readable: str | None) -> None:
    s = make_stack(IngestEndpoint=ENDPOINT, **parameters)
    statements = s.role_statements("ForwarderRole")
    if readable == "created":
        readable = s.ref("AuthSecretResource")
    other = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:database-password-XyZ123"
    assert not allows(statements, "secretsmanager:GetSecretValue", other)
    if readable is None:
        assert not any("secretsmanager:GetSecretValue" in as_list(st["Action"]) for st in statements)
    else:
        assert allows(statements, "secretsmanager:GetSecretValue", readable)


def test_forwarder_sends_failures_only_to_its_dead_letter_queue() -> None:
    s = make_stack(IngestEndpoint=ENDPOINT)
    statements = s.role_statements("ForwarderRole")
    assert allows(statements, "sqs:SendMessage", s.get_att("ForwarderDeadLetterQueue", "Arn"))
    assert not allows(statements, "sqs:SendMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders")


def test_forwarder_queues_continuations_and_receives_work_items_on_its_work_queue_only() -> None:
    s = make_stack(IngestEndpoint=ENDPOINT)
    statements = s.role_statements("ForwarderRole")
    work_queue = s.get_att("WorkQueue", "Arn")
    for action in ("sqs:SendMessage", *EVENT_SOURCE_MAPPING_ACTIONS):
        assert allows(statements, action, work_queue), action
        assert not allows(statements, action, f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders"), action
    # The dead-letter queue is written by Lambda's on-failure destination, never read by the function.
    dead_letters = s.get_att("ForwarderDeadLetterQueue", "Arn")
    assert not any(allows(statements, action, dead_letters) for action in EVENT_SOURCE_MAPPING_ACTIONS)
    # The mapping reads the queue the role may read.
    assert s.properties("WorkQueueEventSourceMapping")["EventSourceArn"] == work_queue


def test_forwarder_role_grants_only_reads_logs_and_its_queues() -> None:
    s = make_stack(IngestEndpoint=ENDPOINT, AuthType="bearer", AuthSecret="token")
    granted = {a for st in s.role_statements("ForwarderRole") for a in as_list(st["Action"])}
    assert granted == {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "secretsmanager:GetSecretValue",
        "sqs:SendMessage",
        *EVENT_SOURCE_MAPPING_ACTIONS,
        *RUNTIME_ACTIONS,
    }


DOMAIN_ARN = f"arn:aws:es:us-east-1:{ACCOUNT}:domain/alb-logs"
COLLECTION_ARN = f"arn:aws:aoss:us-east-1:{ACCOUNT}:collection/0a1b2c3d4e5f6g7h8i9j"
SIGNED = {"OutputFormat": "elasticsearch", "ElasticsearchIndex": "alb-logs", "AuthType": "aws_sigv4"}
OPENSEARCH_ACTIONS = ("es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete", "es:ESHttpGet", "aoss:APIAccessAll")


def opensearch_actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for st in statements for a in as_list(st["Action"]) if a.split(":")[0] in ("es", "aoss")}


def test_signing_forwarder_may_post_to_its_domain_only() -> None:
    s = make_stack(IngestEndpoint=ENDPOINT + "/_bulk", OpenSearchResourceArn=DOMAIN_ARN, **SIGNED)
    statements = s.role_statements("ForwarderRole")
    assert allows(statements, "es:ESHttpPost", f"{DOMAIN_ARN}/_bulk")
    assert allows(statements, "es:ESHttpPost", f"{DOMAIN_ARN}/alb-logs/_bulk")
    assert not allows(statements, "es:ESHttpPost", DOMAIN_ARN)  # the domain's configuration API
    assert not allows(statements, "es:ESHttpPost", f"arn:aws:es:us-east-1:{ACCOUNT}:domain/payroll/_bulk")
    assert opensearch_actions(statements) == {"es:ESHttpPost"}
    # The signer signs for the service the role may use, whatever the endpoint's host name.
    assert s.properties("ForwarderFunction")["Environment"]["Variables"]["AWS_SIGV4_SERVICE"] == "es"


def test_signing_forwarder_may_use_its_collection_only() -> None:
    s = make_stack(IngestEndpoint=ENDPOINT + "/_bulk", OpenSearchResourceArn=COLLECTION_ARN, **SIGNED)
    statements = s.role_statements("ForwarderRole")
    assert allows(statements, "aoss:APIAccessAll", COLLECTION_ARN)
    assert not allows(statements, "aoss:APIAccessAll", f"arn:aws:aoss:us-east-1:{ACCOUNT}:collection/other")
    assert opensearch_actions(statements) == {"aoss:APIAccessAll"}
    assert s.properties("ForwarderFunction")["Environment"]["Variables"]["AWS_SIGV4_SERVICE"] == "aoss"


def test_forwarder_that_does_not_sign_gets_no_opensearch_permission() -> None:
    s = make_stack(IngestEndpoint=ENDPOINT, AuthType="bearer", AuthSecret="token")
    statements = s.role_statements("ForwarderRole")
    assert opensearch_actions(statements) == set()
    assert not any(allows(statements, a, f"{DOMAIN_ARN}/_bulk") for a in OPENSEARCH_ACTIONS)
    assert s.properties("ForwarderFunction")["Environment"]["Variables"]["AWS_SIGV4_SERVICE"] == ""


def test_every_service_the_signer_signs_for_has_its_permission_in_the_template() -> None:
    arns = {"es": DOMAIN_ARN, "aoss": COLLECTION_ARN}
    assert set(SIGV4_SERVICES) == set(arns)
    for service, arn in arns.items():
        s = make_stack(IngestEndpoint=ENDPOINT + "/_bulk", OpenSearchResourceArn=arn, **SIGNED)
        granted = opensearch_actions(s.role_statements("ForwarderRole"))
        assert {a.split(":")[0] for a in granted} == {service}
