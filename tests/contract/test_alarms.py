"""The alarms the template creates: what they watch, when they fire, and where they notify."""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from typing import Any

import pytest

from forwarder import metrics
from forwarder.metrics import ObjectStats, emf_document

from .template_model import ACCOUNT, REGION, Stack, allows, load_template

ALB_ARN = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/web/50dc6c495c0c9188"
ENDPOINT = "https://logs.example.com/v1/ingest"
EMAIL = "oncall@example.com"
TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:ops-alerts"
ANSWER = {
    ("OnboardingResource", "BucketName"): "alb-logs-123456789012-us-east-1-0a1b2c3d",
    ("OnboardingResource", "Prefix"): "",
    ("OnboardingResource", "TopicArn"): f"arn:aws:sns:us-east-1:{ACCOUNT}:web-logs-alb-logs-0a1b2c3d",
}
# Metrics AWS publishes for every function and queue (AWS/Lambda and AWS/SQS documentation), with the
# dimension the alarms use.
AWS_METRICS = {
    "AWS/Lambda": ({"Errors", "Throttles", "Duration", "Invocations"}, "FunctionName"),
    "AWS/SQS": (
        {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "NumberOfMessagesSent"},
        "QueueName",
    ),
}
EXPECTED = {
    ("AlbLogOnboarding", "ObjectsFailed"),
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
    ("AWS/Lambda", "Errors"),
    ("AWS/Lambda", "Throttles"),
    ("AWS/Lambda", "Duration"),
}


def stack(**parameters: str) -> Stack:
    parameters.setdefault("LoadBalancerArn", ALB_ARN)
    return Stack(parameters=parameters, attributes=ANSWER)


def alarm_ids(s: Stack) -> list[str]:
    return [
        logical_id
        for logical_id, res in s.template["Resources"].items()
        if res["Type"] == "AWS::CloudWatch::Alarm" and s.exists(logical_id)
    ]


def watched(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric name, dimensions) of every metric an alarm reads, plain or in metric math."""
    specs = (
        [alarm]
        if "MetricName" in alarm
        else [m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m]
    )
    return [
        (spec["Namespace"], spec["MetricName"], {d["Name"]: d["Value"] for d in spec.get("Dimensions", [])})
        for spec in specs
    ]


def accepts(value: str) -> bool:
    spec = load_template()["Parameters"]["AlarmNotification"]
    return re.fullmatch(spec["AllowedPattern"], value) is not None


# -- what the alarms watch ---------------------------------------------------------------------------
def test_the_alarms_cover_each_failure_a_user_must_hear_about() -> None:
    s = stack(IngestEndpoint=ENDPOINT)
    found = {(ns, name) for logical_id in alarm_ids(s) for ns, name, _ in watched(s.properties(logical_id))}
    assert found == EXPECTED


def test_forwarder_metric_alarms_match_what_the_forwarder_emits() -> None:
    s = stack(IngestEndpoint=ENDPOINT)
    function_name = s.ref("ForwarderFunction")
    # What the forwarder prints as EMF: Lambda's context.function_name is the name Ref returns.
    document = emf_document(ObjectStats(bucket="b", key="k"), function_name=function_name, timestamp_ms=0)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    emitted = {m["Name"] for m in directive["Metrics"]}
    checked = 0
    for logical_id in alarm_ids(s):
        for namespace, name, dimensions in watched(s.properties(logical_id)):
            if namespace != metrics.NAMESPACE:
                continue
            checked += 1
            assert directive["Namespace"] == namespace
            assert name in emitted, logical_id
            # CloudWatch matches a metric only on its full set of dimensions.
            assert [sorted(dimensions)] == directive["Dimensions"], logical_id
            assert {k: document[k] for k in dimensions} == dimensions, logical_id
    assert checked


def test_aws_metric_alarms_name_the_forwarder_and_its_queues() -> None:
    s = stack(IngestEndpoint=ENDPOINT)
    dead_letters = s.properties("ForwarderEventInvokeConfig")["DestinationConfig"]["OnFailure"]["Destination"]
    work_queue = s.properties("WorkQueueEventSourceMapping")["EventSourceArn"]
    # The queue name is the last part of its ARN.
    expected_value = {
        ("AWS/Lambda", None): s.ref("ForwarderFunction"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"): dead_letters.rsplit(":", 1)[1],
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"): work_queue.rsplit(":", 1)[1],
    }
    for logical_id in alarm_ids(s):
        for namespace, name, dimensions in watched(s.properties(logical_id)):
            if namespace == metrics.NAMESPACE:
                continue
            names, dimension = AWS_METRICS[namespace]
            assert name in names, logical_id
            value = expected_value.get((namespace, name), expected_value.get((namespace, None)))
            assert dimensions == {dimension: value}, logical_id


def test_counter_alarms_fire_on_the_first_failure_and_stay_quiet_without_data() -> None:
    s = stack(IngestEndpoint=ENDPOINT)
    for logical_id in alarm_ids(s):
        alarm = s.properties(logical_id)
        # Lambda, SQS and EMF publish nothing while there is nothing to report: missing data is all well.
        assert alarm["TreatMissingData"] == "notBreaching", logical_id
        assert alarm["EvaluationPeriods"] == "1", logical_id
        assert len(alarm["AlarmDescription"]) > 80, f"{logical_id} must say what it means and what to do"
        if "MetricName" in alarm:
            assert alarm["ComparisonOperator"] == "GreaterThanThreshold", logical_id
            assert alarm["Threshold"] == "0", logical_id
            assert alarm["Statistic"] in ("Sum", "Maximum"), logical_id
            assert int(alarm["Period"]) in (60, 300), logical_id


_OPERATORS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _arithmetic(expression: str, values: dict[str, float]) -> float:
    """Evaluate a metric-math expression made only of metric ids, numbers, + - * / and parentheses."""

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            return values[node.id]
        raise AssertionError(f"unexpected metric math in {expression!r}")

    return walk(ast.parse(expression, mode="eval"))


@pytest.mark.parametrize("timeout", ["30", "300", "900"])
def test_duration_alarm_fires_at_nine_tenths_of_the_timeout(timeout: str) -> None:
    s = stack(IngestEndpoint=ENDPOINT, ForwarderTimeout=timeout)
    alarm = s.properties("ForwarderDurationAlarm")
    assert s.properties("ForwarderFunction")["Timeout"] == timeout
    (stat,) = [m for m in alarm["Metrics"] if "MetricStat" in m]
    (result,) = [m for m in alarm["Metrics"] if m.get("ReturnData", True) is not False and "Expression" in m]
    assert stat["ReturnData"] is False
    assert stat["MetricStat"]["Stat"] == "Maximum"
    assert stat["MetricStat"]["Unit"] == "Milliseconds"
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"

    def breaches(duration_ms: float) -> bool:
        return _arithmetic(result["Expression"], {stat["Id"]: duration_ms}) >= float(alarm["Threshold"])

    limit_ms = int(timeout) * 1000
    assert breaches(limit_ms)  # a run that timed out
    assert breaches(limit_ms * 0.9)
    assert not breaches(limit_ms * 0.85)


@pytest.mark.parametrize("timeout", ["30", "300", "900"])
def test_stalled_work_queue_alarm_fires_once_an_item_outlived_a_receive_and_a_run(timeout: str) -> None:
    """A healthy item is deleted within one run of being received; one older than the visibility timeout
    plus a run was received and not finished (its chain stopped), and SQS is retrying it."""
    s = stack(IngestEndpoint=ENDPOINT, ForwarderTimeout=timeout)
    alarm = s.properties("WorkQueueStalledAlarm")
    (stat,) = [m for m in alarm["Metrics"] if "MetricStat" in m]
    (result,) = [m for m in alarm["Metrics"] if m.get("ReturnData", True) is not False and "Expression" in m]
    assert stat["MetricStat"]["Stat"] == "Maximum"
    assert stat["MetricStat"]["Unit"] == "Seconds"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    visibility = int(s.properties("WorkQueue")["VisibilityTimeout"])

    def breaches(age: float) -> bool:
        return _arithmetic(result["Expression"], {stat["Id"]: age}) > float(alarm["Threshold"])

    assert not breaches(int(timeout))  # an item being worked on
    assert not breaches(visibility)  # received once, invisible until now
    assert breaches(visibility + int(timeout) + 1)


# -- where they notify -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "",
        EMAIL,
        "first.last+alb@ops.example.co.uk",
        TOPIC_ARN,
        "arn:aws-cn:sns:cn-north-1:123456789012:alerts_cn",
        "arn:aws-us-gov:sns:us-gov-west-1:123456789012:Alerts-1",
    ],
)
def test_notification_accepts_an_email_or_a_topic_arn(value: str) -> None:
    assert accepts(value)


@pytest.mark.parametrize(
    "value",
    [
        "oncall",
        "oncall@",
        "on call@example.com",
        "https://hooks.example.com/alarm",
        f"arn:aws:sqs:us-east-1:{ACCOUNT}:queue",
        f"arn:aws:sns:us-east-1:{ACCOUNT}:",
        f"arn:aws:sns:us-east-1:{ACCOUNT}:alerts.fifo",  # FIFO needs a group id alarms do not send
        f"arn:aws:sns:us-east-1:{ACCOUNT}:alerts:0a1b2c3d-1111-2222-3333-444455556666",  # a subscription
    ],
)
def test_notification_refuses_anything_else(value: str) -> None:
    assert not accepts(value)


def actions(s: Stack) -> dict[str, tuple[list[str] | None, list[str] | None]]:
    return {
        logical_id: (s.properties(logical_id).get("AlarmActions"), s.properties(logical_id).get("OKActions"))
        for logical_id in alarm_ids(s)
    }


def test_without_a_notification_the_alarms_exist_with_no_actions_and_no_topic() -> None:
    s = stack(IngestEndpoint=ENDPOINT)
    assert len(alarm_ids(s)) == len(EXPECTED)
    assert set(actions(s).values()) == {(None, None)}
    for logical_id in ("AlarmTopic", "AlarmEmailSubscription", "AlarmTopicPolicy"):
        assert not s.exists(logical_id)
    assert "AlarmTopicArn" not in _outputs(s)


def test_an_email_gets_a_topic_with_one_email_subscription() -> None:
    s = stack(IngestEndpoint=ENDPOINT, AlarmNotification=EMAIL)
    topic = s.ref("AlarmTopic")
    subscription = s.properties("AlarmEmailSubscription")
    assert subscription == {"Protocol": "email", "Endpoint": EMAIL, "TopicArn": topic}
    for alarm_actions, ok_actions in actions(s).values():
        assert alarm_actions == ok_actions == [topic]
    assert _outputs(s)["AlarmTopicArn"] == topic


def test_an_existing_topic_gets_the_notifications_and_nothing_is_created() -> None:
    s = stack(IngestEndpoint=ENDPOINT, AlarmNotification=TOPIC_ARN)
    for logical_id in ("AlarmTopic", "AlarmEmailSubscription", "AlarmTopicPolicy"):
        assert not s.exists(logical_id)
    for alarm_actions, ok_actions in actions(s).values():
        assert alarm_actions == ok_actions == [TOPIC_ARN]


def test_without_a_forwarder_there_is_nothing_to_alarm_on() -> None:
    s = stack()
    assert alarm_ids(s) == []
    assert not s.exists("AlarmTopic")


@pytest.mark.parametrize("value", [EMAIL, TOPIC_ARN])
def test_a_notification_without_a_forwarder_is_refused_with_a_reason(value: str) -> None:
    failures = stack(AlarmNotification=value).rule_failures()
    assert any(f.startswith("AlarmsNeedForwarder: ") and len(f) > 60 for f in failures), failures
    assert stack(IngestEndpoint=ENDPOINT, AlarmNotification=value).rule_failures() == []


def _outputs(s: Stack) -> dict[str, Any]:
    return {
        name: s.resolve(spec["Value"])
        for name, spec in s.template["Outputs"].items()
        if "Condition" not in spec or s.condition(spec["Condition"])
    }


def test_the_topic_policy_lets_only_this_stacks_alarms_publish() -> None:
    s = stack(IngestEndpoint=ENDPOINT, AlarmNotification=EMAIL)
    topic = s.ref("AlarmTopic")
    policy = s.properties("AlarmTopicPolicy")
    assert policy["Topics"] == [topic]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"
    alarm_arns = [s.get_att(logical_id, "Arn") for logical_id in alarm_ids(s)]
    for arn in alarm_arns:
        assert arn.startswith(f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:")
        context = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": arn}
        assert allows([statement], "sns:Publish", topic, context)
        assert not allows([statement], "sns:Publish", topic, {**context, "aws:SourceAccount": "210987654321"})
    other = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:someone-elses-alarm"
    assert not allows(
        [statement], "sns:Publish", topic, {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": other}
    )
    assert not allows([statement], "sns:Publish", topic, {"aws:SourceAccount": ACCOUNT})


def test_the_topic_is_encrypted_with_a_key_cloudwatch_may_use_or_the_skip_says_why() -> None:
    resource = load_template()["Resources"]["AlarmTopic"]
    properties = stack(IngestEndpoint=ENDPOINT, AlarmNotification=EMAIL).properties("AlarmTopic")
    # CloudWatch cannot publish to a topic encrypted with the AWS managed key alias/aws/sns: its key
    # policy cannot be changed to let cloudwatch.amazonaws.com use it.
    assert properties.get("KmsMasterKeyId") != "alias/aws/sns"
    skips = {
        skip["id"]: skip["comment"]
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }
    assert "KmsMasterKeyId" in properties or "alias/aws/sns" in skips.get("CKV_AWS_26", "")
