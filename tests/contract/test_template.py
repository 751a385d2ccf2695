"""Template <-> code wiring: handlers, custom resource properties, forwarder environment, lint."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import itertools
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file
from script_modules import load_script

from .template_model import ACCOUNT, REPO, TEMPLATE_PATH, Stack, load_template

ALB_ARN = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/web/50dc6c495c0c9188"
ENDPOINT = "https://logs.example.com/v1/ingest"
CUSTOM_RESOURCE = "OnboardingResource"
# Properties CloudFormation itself reads on every custom resource (ServiceToken is also passed along).
CFN_OWN_PROPERTIES = {"ServiceToken", "ServiceTimeout"}
ANSWER = {
    (CUSTOM_RESOURCE, "BucketName"): "alb-logs-123456789012-us-east-1-0a1b2c3d",
    (CUSTOM_RESOURCE, "Prefix"): "",
    (CUSTOM_RESOURCE, "TopicArn"): f"arn:aws:sns:us-east-1:{ACCOUNT}:web-logs-alb-logs-0a1b2c3d",
}


def stack(**parameters: str) -> Stack:
    parameters.setdefault("LoadBalancerArn", ALB_ARN)
    return Stack(parameters=parameters, attributes=ANSWER)


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Lambda::Function"}


# -- lint ------------------------------------------------------------------------------------------------
def test_cfn_lint_finds_nothing_in_any_partition() -> None:
    config = ManualArgs(regions=["us-east-1", "eu-central-2", "us-gov-west-1", "cn-north-1"])
    matches = lint_file(Path(TEMPLATE_PATH), config=config)
    assert [str(m) for m in matches] == []


def test_every_checkov_skip_says_why() -> None:
    for logical_id, res in load_template()["Resources"].items():
        for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith("CKV"), logical_id
            assert len(str(skip.get("comment", ""))) > 40, f"{logical_id} skips {skip['id']} without a reason"


# -- functions -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("logical_id", ["ProvisionerFunction", "ForwarderFunction"])
def test_handler_is_an_importable_function_taking_event_and_context(
    logical_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Importing a handler must not need AWS; a region only lets boto3 build clients lazily.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    handler = functions(load_template())[logical_id]["Properties"]["Handler"]
    module_name, _, function_name = handler.rpartition(".")
    module = importlib.import_module(module_name)
    function = getattr(module, function_name)
    assert callable(function)
    assert len(inspect.signature(function).parameters) == 2


def test_functions_run_a_lambda_python_that_the_project_supports() -> None:
    for logical_id, res in functions(load_template()).items():
        assert res["Properties"]["Runtime"] in ("python3.12", "python3.13"), logical_id


@pytest.mark.parametrize("region", ["eu-west-1", "us-gov-west-1", "cn-north-1"])
def test_code_location_follows_the_publish_layout(region: str) -> None:
    s = Stack(
        parameters={"LoadBalancerArn": ALB_ARN, "IngestEndpoint": ENDPOINT, "CodeVersion": "1.4.2"},
        region=region,
        attributes=ANSWER,
    )
    for logical_id, package in (("ProvisionerFunction", "provisioner"), ("ForwarderFunction", "forwarder")):
        props = s.properties(logical_id)
        # Lambda reads code only from a bucket in the function's own region.
        assert props["Code"] == {
            "S3Bucket": f"alb-log-onboarding-{region}",
            "S3Key": f"alb-log-onboarding/1.4.2/{package}.zip",
        }
        assert props["Handler"].split(".")[0] == package


def _publish_layout() -> ModuleType:
    """scripts/release/quick_create_link.py, which owns the release layout the publish script uploads to."""
    return load_script("release/quick_create_link")


@pytest.mark.parametrize("region", ["ap-southeast-2", "cn-northwest-1"])
def test_code_location_is_where_the_publish_script_uploads(region: str) -> None:
    layout = _publish_layout()
    s = Stack(
        parameters={
            "LoadBalancerArn": ALB_ARN,
            "IngestEndpoint": ENDPOINT,
            "CodeBucketPrefix": "acme-releases",
        },
        region=region,
        attributes=ANSWER,
    )
    version = s.values["CodeVersion"]
    for logical_id, package in (("ProvisionerFunction", "provisioner"), ("ForwarderFunction", "forwarder")):
        assert s.properties(logical_id)["Code"] == {
            "S3Bucket": layout.code_bucket("acme-releases", region),
            "S3Key": layout.artifact_key(version, f"{package}.zip"),
        }


@pytest.mark.parametrize("version", ["0.1.0", "1.2.3-rc.1", "2025_01", "v1", "1.0+build", "-1", "1/2", ""])
def test_code_version_pattern_agrees_with_the_publish_script(version: str) -> None:
    layout = _publish_layout()
    spec = load_template()["Parameters"]["CodeVersion"]
    template_ok = (
        re.fullmatch(spec["AllowedPattern"], version) is not None and len(version) <= spec["MaxLength"]
    )
    assert template_ok is (layout.VERSION_RE.match(version) is not None)


def test_functions_log_to_their_own_group_with_a_retention() -> None:
    s = stack(IngestEndpoint=ENDPOINT)
    for logical_id in ("ProvisionerFunction", "ForwarderFunction"):
        group_id = load_template()["Resources"][logical_id]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert int(s.properties(group_id)["RetentionInDays"]) > 0


# -- custom resource -------------------------------------------------------------------------------------
def test_service_timeout_is_above_the_function_timeout_and_below_an_hour() -> None:
    s = stack()
    timeout = int(s.properties("ProvisionerFunction")["Timeout"])
    service_timeout = int(s.properties(CUSTOM_RESOURCE)["ServiceTimeout"])
    assert timeout < service_timeout < 3600


def test_lambda_never_retries_the_provisioner() -> None:
    """CloudFormation invokes the provisioner asynchronously; a retried run would replay a killed request
    while CloudFormation is already acting on the timeout answer."""
    s = stack()
    configs = [
        s.properties(logical_id)
        for logical_id, res in load_template()["Resources"].items()
        if res["Type"] == "AWS::Lambda::EventInvokeConfig"
        and s.exists(logical_id)
        and res["Properties"]["FunctionName"] == {"Ref": "ProvisionerFunction"}
    ]
    assert len(configs) == 1
    (config,) = configs
    # The ServiceToken is the unqualified ARN, which runs $LATEST.
    assert s.properties(CUSTOM_RESOURCE)["ServiceToken"] == s.get_att("ProvisionerFunction", "Arn")
    assert config["Qualifier"] == "$LATEST"
    assert config["MaximumRetryAttempts"] == "0"
    assert "DestinationConfig" not in config
    # An event that waited longer could no longer be answered before CloudFormation's own timeout.
    age = int(config["MaximumEventAgeInSeconds"])
    timeout = int(s.properties("ProvisionerFunction")["Timeout"])
    assert 60 <= age <= int(s.properties(CUSTOM_RESOURCE)["ServiceTimeout"]) - timeout


def test_the_custom_resource_waits_for_the_no_retry_setting() -> None:
    resources = load_template()["Resources"]
    (config_id,) = [
        k
        for k, v in resources.items()
        if v["Type"] == "AWS::Lambda::EventInvokeConfig"
        and v["Properties"]["FunctionName"] == {"Ref": "ProvisionerFunction"}
    ]
    depends = resources[CUSTOM_RESOURCE].get("DependsOn", [])
    assert config_id in ([depends] if isinstance(depends, str) else depends)


def test_template_does_not_claim_the_provisioner_is_invoked_synchronously() -> None:
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    assert re.search(r"\bsynchronous", text) is None


def test_custom_resource_passes_exactly_the_properties_the_provisioner_reads() -> None:
    properties = importlib.import_module("provisioner.properties")
    template_names = set(load_template()["Resources"][CUSTOM_RESOURCE]["Properties"]) - CFN_OWN_PROPERTIES
    assert template_names == set(properties.KNOWN) - CFN_OWN_PROPERTIES


def test_custom_resource_values_are_strings_the_provisioner_accepts() -> None:
    """Resolve the properties for a typical stack and feed them to the provisioner's own parser."""
    properties = importlib.import_module("provisioner.properties")
    arns = importlib.import_module("provisioner.arns")
    s = stack(
        IngestEndpoint=ENDPOINT,
        LogBucketName="team-alb-logs",
        LogPrefix="prod/web",
        SubscriptionEndpoint="https://hooks.example.com/alb",
        ReaderPrincipalArn=f"arn:aws:iam::{ACCOUNT}:role/log-reader",
        RetainLogBucket="false",
    )
    raw = s.properties(CUSTOM_RESOURCE)
    assert all(isinstance(v, str) for v in raw.values())
    env = arns.Environment(partition="aws", region="us-east-1", account=ACCOUNT)
    parsed = properties.parse_properties(raw, env)
    assert parsed.bucket_name == "team-alb-logs"
    assert parsed.prefix == "prod/web"
    assert parsed.retain_bucket is False
    assert parsed.log_retention_days == 90
    assert parsed.forwarder is not None


def test_without_a_forwarder_the_custom_resource_gets_an_empty_function_arn() -> None:
    s = stack()
    assert s.properties(CUSTOM_RESOURCE)["ForwarderFunctionArn"] == ""
    for logical_id in (
        "ForwarderFunction",
        "ForwarderRole",
        "ForwarderDeadLetterQueue",
        "ForwarderEventInvokeConfig",
        "ForwarderLogReadPolicy",
        "AuthSecretResource",
        "WorkQueue",
        "WorkQueueEventSourceMapping",
    ):
        assert not s.exists(logical_id), logical_id


def test_with_a_forwarder_the_custom_resource_gets_its_arn() -> None:
    s = stack(IngestEndpoint=ENDPOINT)
    assert s.properties(CUSTOM_RESOURCE)["ForwarderFunctionArn"] == s.get_att("ForwarderFunction", "Arn")


def test_attributes_read_from_the_custom_resource_are_ones_the_provisioner_answers() -> None:
    used = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "Fn::GetAtt" in node and node["Fn::GetAtt"][0] == CUSTOM_RESOURCE:
                used.add(node["Fn::GetAtt"][1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(load_template())
    assert used == {"BucketName", "Prefix", "TopicArn"}
    assert used == answered_data_keys()


def answered_data_keys() -> set[str]:
    """Keys of the dict the provisioner answers as Data: the literal that names TopicArn and BucketName."""
    found: list[set[str]] = []
    for path in sorted((REPO / "provisioner").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) for k in node.keys):
                keys = {str(k.value) for k in node.keys if isinstance(k, ast.Constant)}
                if {"BucketName", "TopicArn"} <= keys:
                    found.append(keys)
    assert len(found) == 1, f"expected one Data dict in provisioner/, found {found}"
    return found[0]


# -- forwarder environment -------------------------------------------------------------------------------
def forwarder_env(s: Stack) -> dict[str, str]:
    return s.properties("ForwarderFunction")["Environment"]["Variables"]


def test_forwarder_environment_names_are_ones_the_forwarder_reads() -> None:
    config = importlib.import_module("forwarder.config")
    names = set(forwarder_env(stack(IngestEndpoint=ENDPOINT)))
    assert names <= set(config.ENV_VARS), names - set(config.ENV_VARS)
    assert config.HTTP_ENDPOINT in names


def test_template_defaults_equal_the_forwarder_defaults() -> None:
    config = importlib.import_module("forwarder.config")
    params = load_template()["Parameters"]
    assert params["AuthType"]["Default"] == config.AUTH_NONE
    assert set(params["AuthType"]["AllowedValues"]) == set(config.AUTH_TYPES)
    assert params["AuthHeaderName"]["Default"] == config.DEFAULT_AUTH_HEADER_NAME
    assert float(params["HttpTimeoutSeconds"]["Default"]) == config.DEFAULT_TIMEOUT_SECONDS
    assert float(params["HttpTimeoutSeconds"]["MaxValue"]) <= config.MAX_TIMEOUT_SECONDS
    # Empty: the forwarder uses what the output format's intake accepts.
    assert params["BatchMaxRecords"]["Default"] == params["BatchMaxBytes"]["Default"] == ""
    assert params["LogLevel"]["Default"] == config.DEFAULT_LOG_LEVEL
    assert set(params["LogLevel"]["AllowedValues"]) <= set(config.LOG_LEVELS)
    assert params["TestMode"]["Default"] == "false"


SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:ingest-token-AbCdEf"


@pytest.mark.parametrize(
    ("auth_type", "secret", "secret_arn", "username"),
    list(
        itertools.product(
            ["none", "bearer", "basic", "apikey"],
            ["", "s3cr3t-token-value"],
            ["", SECRET_ARN],
            ["", "ingest-user"],
        )
    ),
)
def test_template_rules_accept_exactly_what_the_forwarder_accepts(
    auth_type: str, secret: str, secret_arn: str, username: str
) -> None:
    """Every combination the stack's Rules let through must start a working forwarder, and back."""
    config = importlib.import_module("forwarder.config")
    s = stack(
        IngestEndpoint=ENDPOINT,
        AuthType=auth_type,
        AuthSecret=secret,
        AuthSecretArn=secret_arn,
        AuthUsername=username,
    )
    failures = s.rule_failures()
    try:
        config.Config.from_env(forwarder_env(s))
    except config.ConfigError as exc:
        forwarder_error: str | None = str(exc)
    else:
        forwarder_error = None
    # Beyond the forwarder, the stack refuses input that is surely a mistake: a credential with auth type
    # none (it would never be sent) and two credentials at once (which one did the user mean?).
    stack_only = (auth_type == "none" and bool(secret or secret_arn)) or bool(secret and secret_arn)
    if failures and not stack_only:
        assert forwarder_error is not None, f"rules refuse what the forwarder accepts: {failures}"
    if not failures:
        assert forwarder_error is None, forwarder_error
        assert not stack_only


def test_credential_never_reaches_the_environment() -> None:
    secret = "s3cr3t-token-value"
    s = stack(IngestEndpoint=ENDPOINT, AuthType="bearer", AuthSecret=secret)
    env = forwarder_env(s)
    assert all(secret not in value for value in env.values())
    assert env["HTTP_AUTH_SECRET_ARN"] == s.ref("AuthSecretResource")
    assert s.properties("AuthSecretResource")["SecretString"] == secret
    assert load_template()["Parameters"]["AuthSecret"]["NoEcho"] is True


def test_existing_secret_is_passed_by_arn_and_no_secret_is_created() -> None:
    s = stack(IngestEndpoint=ENDPOINT, AuthType="bearer", AuthSecretArn=SECRET_ARN)
    assert forwarder_env(s)["HTTP_AUTH_SECRET_ARN"] == SECRET_ARN
    assert not s.exists("AuthSecretResource")


def test_no_secret_means_an_empty_secret_arn() -> None:
    s = stack(IngestEndpoint=ENDPOINT)
    assert forwarder_env(s)["HTTP_AUTH_SECRET_ARN"] == ""
    assert not s.exists("AuthSecretResource")


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({}, None),
        ({"ForwarderReservedConcurrency": "5"}, "5"),
        ({"ForwarderReservedConcurrency": "0"}, "0"),
    ],
)
def test_reserved_concurrency_is_set_only_when_asked(
    parameters: dict[str, str], expected: str | None
) -> None:
    props = stack(IngestEndpoint=ENDPOINT, **parameters).properties("ForwarderFunction")
    assert props.get("ReservedConcurrentExecutions") == expected


def test_forwarder_size_and_timeout_come_from_parameters() -> None:
    props = stack(IngestEndpoint=ENDPOINT).properties("ForwarderFunction")
    assert (props["MemorySize"], props["Timeout"]) == ("1024", "300")
    props = stack(IngestEndpoint=ENDPOINT, ForwarderMemorySize="1769", ForwarderTimeout="900").properties(
        "ForwarderFunction"
    )
    assert (props["MemorySize"], props["Timeout"]) == ("1769", "900")


def test_forwarder_memory_default_is_the_one_the_sizing_model_and_benchmark_use() -> None:
    from forwarder.sizing import DEFAULT_MEMORY_MB

    assert str(load_template()["Parameters"]["ForwarderMemorySize"]["Default"]) == str(DEFAULT_MEMORY_MB)


def test_failed_events_go_to_an_encrypted_dead_letter_queue() -> None:
    s = stack(IngestEndpoint=ENDPOINT)
    invoke = s.properties("ForwarderEventInvokeConfig")
    assert invoke["FunctionName"] == s.ref("ForwarderFunction")
    assert invoke["MaximumRetryAttempts"] == "2"
    assert invoke["MaximumEventAgeInSeconds"] == "21600"
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == s.get_att(
        "ForwarderDeadLetterQueue", "Arn"
    )
    queue = s.properties("ForwarderDeadLetterQueue")
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == str(14 * 24 * 3600)


# Lambda's guidance for an SQS event source: a visibility timeout of at least 6 times the function's.
VISIBILITY_PER_TIMEOUT = 6
SQS_MAX_VISIBILITY_SECONDS = 43200


@pytest.mark.parametrize("timeout", ["30", "300", "900"])
def test_work_queue_hides_an_item_for_six_function_timeouts_then_dead_letters_it(timeout: str) -> None:
    s = stack(IngestEndpoint=ENDPOINT, ForwarderTimeout=timeout)
    queue = s.properties("WorkQueue")
    visibility = int(queue["VisibilityTimeout"])
    assert VISIBILITY_PER_TIMEOUT * int(s.properties("ForwarderFunction")["Timeout"]) <= visibility
    assert visibility <= SQS_MAX_VISIBILITY_SECONDS
    largest = int(load_template()["Parameters"]["ForwarderTimeout"]["MaxValue"])
    assert VISIBILITY_PER_TIMEOUT * largest <= visibility
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == str(14 * 24 * 3600)
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == s.get_att("ForwarderDeadLetterQueue", "Arn")
    assert 1 < int(redrive["maxReceiveCount"]) <= 5


def test_work_queue_brings_one_item_at_a_time_back_to_the_forwarder() -> None:
    s = stack(IngestEndpoint=ENDPOINT, WorkQueueMaxConcurrency="8")
    mapping = s.properties("WorkQueueEventSourceMapping")
    assert mapping["EventSourceArn"] == s.get_att("WorkQueue", "Arn")
    assert mapping["FunctionName"] == s.ref("ForwarderFunction")
    assert mapping["BatchSize"] == "1"
    # The handler answers batchItemFailures; without this setting Lambda would ignore it.
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": "8"}


def test_forwarder_queues_continuations_on_the_work_queue() -> None:
    config = importlib.import_module("forwarder.config")
    s = stack(IngestEndpoint=ENDPOINT)
    assert forwarder_env(s)[config.WORK_QUEUE_URL] == s.ref("WorkQueue")
    assert config.Config.from_env(forwarder_env(s)).work_queue_url == s.ref("WorkQueue")


# -- outputs ---------------------------------------------------------------------------------------------
def test_outputs() -> None:
    outputs = load_template()["Outputs"]
    for name, attribute in (
        ("LogBucketName", "BucketName"),
        ("LogPrefix", "Prefix"),
        ("TopicArn", "TopicArn"),
    ):
        assert outputs[name]["Value"] == {"Fn::GetAtt": [CUSTOM_RESOURCE, attribute]}
        assert "Condition" not in outputs[name]
    for name in ("ForwarderFunctionArn", "DeadLetterQueueUrl", "WorkQueueUrl", "WorkQueueArn"):
        assert outputs[name]["Condition"] == "HasForwarder"
    s = stack(IngestEndpoint=ENDPOINT)
    assert s.resolve(outputs["DeadLetterQueueUrl"]["Value"]) == s.ref("ForwarderDeadLetterQueue")
    # What `replay --via-lambda` sends backfill items to.
    assert s.resolve(outputs["WorkQueueUrl"]["Value"]) == s.ref("WorkQueue")
    assert s.resolve(outputs["WorkQueueArn"]["Value"]) == s.get_att("WorkQueue", "Arn")
    assert s.resolve(outputs["ForwarderFunctionArn"]["Value"]) == s.get_att("ForwarderFunction", "Arn")


# -- README ----------------------------------------------------------------------------------------------
def test_every_parameter_output_and_alarm_has_a_row_in_the_readme() -> None:
    rows = set(re.findall(r"^\| `([A-Za-z0-9_]+)` \|", (REPO / "README.md").read_text(), re.MULTILINE))
    template = load_template()
    alarms = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"]
    for name in [*template["Parameters"], *template["Outputs"], *alarms]:
        assert name in rows, f"README has no table row for {name}"
