"""`make demo`: the whole flow on an embedded AWS, run the way a user runs it (a process, output to a pipe).

The demo's own checks (one answer per request, every line delivered once, the account restored) make it
exit non-zero when they fail; these tests hold it to that and to the lines a person reads.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from script_modules import load_script

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO = REPO_ROOT / "scripts" / "demo" / "demo.py"
TEMPLATE = REPO_ROOT / "templates" / "onboarding.yaml"

demo_template = load_script("demo/demo_template")


def run_demo(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the demo with the venv's python from another directory, with no AWS settings inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "NO_COLOR"}
    env["PYTHONIOENCODING"] = "utf-8"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(DEMO), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    return result, time.monotonic() - started


def section(output: str, heading: str, next_heading: str) -> str:
    start = output.index(f"\n{heading}\n") + len(heading) + 2
    return output[start : output.index(f"\n{next_heading}\n", start)]


def test_demo_with_defaults_runs_the_whole_story_green(tmp_path: Path) -> None:
    result, seconds = run_demo(tmp_path)
    out = result.stdout

    assert result.returncode == 0, out + result.stderr
    assert seconds < 60, f"the demo took {seconds:.1f} s with its defaults"
    assert "Traceback" not in result.stderr
    assert "\x1b[" not in out, "no colours when the output is not a terminal"
    assert "✗" not in out
    for line in (
        "✓ embedded AWS: moto's server on 127.0.0.1",
        "✓ custom resource Create through provisioner.handler.handler -> SUCCESS",
        "✓ notifications S3 -> SNS -> forwarder, the forwarder -> ingest receiver",
        "✓ every line arrived once, parsed or counted as unparseable",
        "✓ custom resource Delete through provisioner.handler.handler -> SUCCESS",
        "✓ the account is back to its starting state",
    ):
        assert line in out
    # The local-only switch and the Lambda stand-in are said out loud.
    assert "HTTP_ALLOW_INSECURE=true" in out and "local-only switch" in out
    assert "the demo plays the Lambda service" in out
    # Properties resolved from the template's defaults, as strings.
    assert re.search(r"^\s+RetainBucket\s+true$", out, re.MULTILINE)
    assert re.search(r"^\s+LogRetentionDays\s+90$", out, re.MULTILINE)
    assert re.search(
        r"^\s+ForwarderFunctionArn\s+arn:aws:lambda:us-east-1:\d{12}:function:", out, re.MULTILINE
    )
    assert re.search(r"Data\.TopicArn\s+arn:aws:sns:us-east-1:\d{12}:alb-logs-demo-alb-logs-[0-9a-f]{8}", out)

    # 4 files of 2500 lines, one per field generation, each with 2 lines that are not log lines.
    table = section(out, "Records received per file", "One record as the receiver got it (json)")
    rows = re.findall(
        r"^\s+(\d{8}T\d{4}Z_[\d.]+_\w{8}\.log\.gz)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", table, re.M
    )
    assert [int(fields) for _, fields, *_ in rows] == [25, 29, 30, 34]
    assert all((lines, received, bad) == ("2500", "2500", "2") for _, _, lines, received, bad in rows)
    assert re.search(r"^\s+total\s+10000\s+10000\s+8\s+\d+$", table, re.MULTILINE)
    assert "parse_error=" in table

    sample: dict[str, Any] = json.loads(
        textwrap.dedent(section(out, "One record as the receiver got it (json)", "Throughput"))
    )
    assert sample["elb_status_code"] == 200
    assert sample["elb"].startswith("app/web/")
    assert re.fullmatch(r"[0-9a-f]{32}", sample["event_id"])
    assert "/AWSLogs/" in sample["s3_key"] and sample["s3_key"].endswith(".log.gz")
    assert sample["ip_address"], "the sample comes from the 34-field file"

    # A CloudWatch Logs log group in LogGroupNames, its lines parsed by a custom grok format.
    cloudwatch = section(out, "CloudWatch Logs flow", "Stack delete")
    for line in (
        "✓ the stack's subscription filter on /ecs/web-nginx names the forwarder",
        "✓ 3 nginx access lines put in /ecs/web-nginx",
        "✓ subscription delivery CloudWatch Logs -> forwarder, the forwarder -> ingest receiver",
        "✓ every event arrived once, as a typed nginx_access record",
    ):
        assert line in cloudwatch
    assert "moto does not run subscription filters" in cloudwatch
    assert (
        "log_type='nginx_access', log_group='/ecs/web-nginx', timestamp='2025-03-14T09:30:02Z'" in cloudwatch
    )
    assert "http_method='POST', status=201" in cloudwatch
    assert "log group subscription filters: as before" in out
    assert "3 CloudWatch Logs events as nginx_access, account restored" in out

    throughput = section(out, "Throughput", "CloudWatch Logs flow")
    assert re.search(r"10,000 lines in [\d.]+ s end to end = [\d,]+ lines/s", throughput)
    assert re.search(
        r"\n✓ demo passed: \d+ steps, 4 files, 10,000 lines delivered as json \(8 unparseable\)", out
    )


@pytest.mark.parametrize("output_format", ["otlp", "elasticsearch"])
def test_demo_in_another_format_shows_what_the_receiver_got_in_it(tmp_path: Path, output_format: str) -> None:
    result, _ = run_demo(tmp_path, "--format", output_format, "--files", "2", "--lines", "50")
    out = result.stdout

    assert result.returncode == 0, out + result.stderr
    assert f"ingest receiver for the {output_format} format" in out
    assert f"OUTPUT_FORMAT={output_format}" in out
    assert "✓ every line arrived once, parsed or counted as unparseable" in out
    assert "✓ every event arrived once, as a typed nginx_access record" in out
    assert re.search(r"^\s+total\s+100\s+100\s+4\s+\d+$", out, re.MULTILINE)
    shown = textwrap.dedent(
        section(out, f"One record as the receiver got it ({output_format})", "Throughput")
    )
    if output_format == "otlp":  # one ResourceLogs: the resource, the scope, the record's attributes
        resource_logs = json.loads(shown)
        assert {"key": "cloud.region", "value": {"stringValue": "us-east-1"}} in (
            resource_logs["resource"]["attributes"]
        )
        (log_record,) = resource_logs["scopeLogs"][0]["logRecords"]
        attributes = {a["key"]: a["value"] for a in log_record["attributes"]}
        assert attributes["http.response.status_code"] == {"intValue": "200"}
        assert re.fullmatch(r"[0-9a-f]{32}", attributes["event_id"]["stringValue"])
    else:  # the _bulk action line, then the document it creates
        action_line, document = shown.split("\n", 1)
        action = json.loads(action_line)["create"]
        assert action["_index"].startswith("alb-logs-")
        assert action["_id"] == json.loads(document)["event_id"]
    assert f"100 lines delivered as {output_format} (4 unparseable)" in out


def test_the_receiver_refuses_a_body_of_another_format() -> None:
    receiver_module = load_script("demo/demo_receiver")
    receiver = receiver_module.IngestReceiver("t0ken", "otlp")
    try:
        headers = {
            "Authorization": "Bearer t0ken",
            "Content-Encoding": "gzip",
            "Content-Type": "application/json",
        }
        body = gzip.compress(b'{"logs": [{"event_id": "a"}]}')
        _, rejection = receiver.check(headers, body)
        assert rejection is not None and rejection.status == 400 and "resourceLogs" in rejection.reason
        _, rejection = receiver.check({**headers, "Authorization": "Splunk t0ken"}, body)
        assert rejection is not None and rejection.status == 401
    finally:
        receiver.close()


def test_a_receiver_that_rejects_the_token_fails_the_demo(tmp_path: Path) -> None:
    result, _ = run_demo(
        tmp_path, "--inject-fault", "wrong-token", "--quiet", "--files", "2", "--lines", "50"
    )
    out = result.stdout

    assert result.returncode == 1, out + result.stderr
    assert "Traceback" not in result.stderr
    # Quiet: no ticks, only the failing step, its reason and the verdict.
    assert "✓" not in out
    assert "✗ notifications S3 -> SNS -> forwarder, the forwarder -> ingest receiver" in out
    assert "401" in out and "dead-letter queue" in out
    assert "✗ demo failed at: notifications S3 -> SNS -> forwarder" in out
    assert "demo passed" not in out


def test_bad_option_values_are_refused_before_anything_starts(capsys: pytest.CaptureFixture[str]) -> None:
    demo = load_script("demo/demo")

    for argv in (
        ["--files", "0"],
        ["--lines", "9"],
        ["--inject-fault", "nonsense"],
        ["--format", "xml"],
        ["--files", "50", "--lines", "50000"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            demo.main(argv)
        assert exit_info.value.code == 2
        captured = capsys.readouterr()
        assert argv[0] in captured.err
        assert "embedded AWS" not in captured.out


# --- reading the template the way the console does -------------------------------------------------------

ALB_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:demo/ingest-token-AbCdEf"
FORWARDER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:demo-ForwarderFunction-1"
PROVISIONER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:demo-ProvisionerFunction-1"


def resolver_for(template: dict[str, Any], **given: str) -> demo_template.Resolver:
    params = demo_template.parameters(template, given)
    return demo_template.Resolver(
        template,
        params.values,
        pseudo={"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"},
        attributes={
            ("ForwarderFunction", "Arn"): FORWARDER_ARN,
            ("ProvisionerFunction", "Arn"): PROVISIONER_ARN,
        },
    )


def test_custom_resource_properties_follow_the_template_conditions() -> None:
    template = demo_template.load(TEMPLATE)
    logical_id = demo_template.find_resource(template, "Custom::AlbLogOnboarding")

    with_forwarder = resolver_for(
        template,
        LoadBalancerArn=ALB_ARN,
        IngestEndpoint="https://intake.example.com/v1/logs",
        AuthType="bearer",
        AuthSecretArn=SECRET_ARN,
    )
    demo_template.check_rules(with_forwarder)
    props = demo_template.as_custom_resource_properties(
        demo_template.resource_properties(with_forwarder, logical_id)
    )
    assert props["ForwarderFunctionArn"] == FORWARDER_ARN
    assert props["ServiceToken"] == PROVISIONER_ARN
    assert props["LoadBalancerArn"] == ALB_ARN
    assert (props["RetainBucket"], props["LogRetentionDays"], props["BucketName"]) == ("true", "90", "")
    assert all(isinstance(value, str) for value in props.values())

    # With the template's own defaults there is no forwarder: the If picks "".
    no_forwarder = resolver_for(template, LoadBalancerArn=ALB_ARN)
    props = demo_template.as_custom_resource_properties(
        demo_template.resource_properties(no_forwarder, logical_id)
    )
    assert props["ForwarderFunctionArn"] == ""


def test_values_the_console_would_refuse_are_refused() -> None:
    template = demo_template.load(TEMPLATE)
    nlb = ALB_ARN.replace("/app/", "/net/")
    with pytest.raises(demo_template.TemplateError, match="LoadBalancerArn"):
        demo_template.parameters(template, {"LoadBalancerArn": nlb})
    with pytest.raises(demo_template.TemplateError, match="LoadBalancerArn has no default"):
        demo_template.parameters(template, {})
    with pytest.raises(demo_template.TemplateError, match="LogRetentionDays"):
        demo_template.parameters(template, {"LoadBalancerArn": ALB_ARN, "LogRetentionDays": "0"})
    # A rule: a credential without an authentication type would never be sent.
    resolver = resolver_for(template, LoadBalancerArn=ALB_ARN, AuthSecretArn=SECRET_ARN)
    with pytest.raises(demo_template.TemplateError, match="rule NoCredentialWithoutAuthType"):
        demo_template.check_rules(resolver)


def test_the_template_reads_as_cfn_lint_reads_it() -> None:
    """The demo's small YAML loader must agree with cfn-lint's decoder on the real template."""
    from cfnlint.decode import cfn_yaml

    def plain(value: Any) -> Any:
        return json.loads(json.dumps(value, sort_keys=True, default=str))

    assert plain(demo_template.load(TEMPLATE)) == plain(cfn_yaml.load(str(TEMPLATE)))


def test_what_the_demo_cannot_resolve_fails_loudly() -> None:
    template: dict[str, Any] = {
        "Parameters": {"Name": {"Type": "String", "Default": "web"}},
        "Resources": {
            "Thing": {
                "Type": "Custom::AlbLogOnboarding",
                "Properties": {"Plain": {"Ref": "Name"}, "Joined": {"Fn::Sub": "${Name}-logs"}},
            }
        },
    }
    resolver = resolver_for(template)
    with pytest.raises(demo_template.TemplateError, match=r"Resources\.Thing\.Joined.*Fn::Sub"):
        demo_template.resource_properties(resolver, "Thing")
    template["Resources"]["Thing"]["Properties"] = {"Role": {"Fn::GetAtt": ["SomeRole", "Arn"]}}
    with pytest.raises(demo_template.TemplateError, match=r"Fn::GetAtt SomeRole\.Arn"):
        demo_template.resource_properties(resolver, "Thing")
