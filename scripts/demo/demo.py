"""The whole onboarding flow on an embedded AWS, with no account and no network: `make demo`.

1. Start moto's server on 127.0.0.1 (the embedded AWS), a log intake of the chosen output format
   (--format, json by default) that checks its credential, and an HTTPS stand-in for CloudFormation's
   response URL.
2. Build the customer's starting point: a VPC, an application load balancer that already logs to its own
   bucket, the ingest token in Secrets Manager and the forwarder function.
3. Run the stack's custom resource Create through the real provisioner handler, with properties resolved
   from templates/onboarding.yaml's defaults plus the load balancer and the ingest endpoint.
4. Write realistic ALB log files into the bucket; S3 notifies the stack's topic; the demo plays the Lambda
   service and calls the real forwarder handler, which posts every line to the intake.
5. Put nginx-style access lines in a CloudWatch Logs log group the stack subscribes (LogGroupNames), with
   a custom grok format for them (CustomFormats); hand the forwarder the subscription filter's delivery as
   CloudWatch Logs builds it and check each event arrives once as a typed record.
6. Run the Delete and prove the account is back to its starting state.

Exit status 0 when every step passed, 1 when one failed (the failing step and its reason are printed).
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import gzip
import io
import json
import logging
import os
import random
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import moto

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parents[1]
# Its siblings, the log line generator it shares with the benchmark and the tests, and the Lambda code.
for _path in (str(SCRIPTS), str(SCRIPTS.parent / "common"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import alb_logs  # noqa: E402
import demo_aws  # noqa: E402
import demo_logs  # noqa: E402
import demo_template  # noqa: E402
from demo_output import Console, StepError  # noqa: E402
from demo_receiver import INTAKES, IngestReceiver, ResponseReceiver  # noqa: E402

from forwarder import handler as forwarder_handler  # noqa: E402
from forwarder.destinations import DEFAULT_OUTPUT_FORMAT, OUTPUT_FORMATS  # noqa: E402
from provisioner import handler as provisioner_handler  # noqa: E402
from provisioner import response as provisioner_response  # noqa: E402

TEMPLATE = ROOT / "templates" / "onboarding.yaml"
REGION = "us-east-1"
STACK_NAME = "alb-logs-demo"
ALB_NAME = "web"
LOG_BUCKET = f"acme-web-alb-logs-{demo_aws.ACCOUNT}"
LOG_PREFIX = "prod/web"
SECRET_NAME = "demo/ingest-token"  # noqa: S105 - a secret's name
LOG_GROUP = "/ecs/web-nginx"
LOG_STREAM = "nginx/web/0f1e2d3c4b5a69788796a5b4c3d2e1f0"
GROK_FORMAT = "nginx_access"
# nginx's default "combined" access log line; the HTTPDATE capture named timestamp becomes ISO 8601 UTC.
GROK_PATTERN = (
    r"^%{IPORHOST:client_ip} - %{NOTSPACE:remote_user} \[%{HTTPDATE:timestamp}\] "
    r'"%{WORD:http_method} %{NOTSPACE:request} HTTP/%{NUMBER:http_version}" %{NUMBER:status:int} '
    r"%{NUMBER:body_bytes:int} %{QS:referrer} %{QS:user_agent}$"
)
NGINX_LINES = (
    '203.0.113.7 - - [14/Mar/2025:09:30:01 +0000] "GET /index.html HTTP/1.1" 200 5120 "-" "curl/8.5.0"',
    '198.51.100.23 - alice [14/Mar/2025:09:30:02 +0000] "POST /api/orders HTTP/1.1" 201 312 '
    '"https://www.example.com/cart" "Mozilla/5.0"',
    '192.0.2.44 - - [14/Mar/2025:09:30:04 +0000] "GET /missing HTTP/2.0" 404 153 "-" "Mozilla/5.0"',
)
FAULTS = ("wrong-token",)
# The index the elasticsearch format writes to: one per day, as the template's example.
ES_INDEX = "alb-logs-%Y.%m.%d"
# Enough to watch throughput; the files are built in memory first.
MAX_TOTAL_LINES = 1_000_000
IDLE_SECONDS = 10.0
INSECURE_NOTE = (
    "HTTP_ALLOW_INSECURE=true lets the forwarder post over plain http:// to this loopback receiver; it is a "
    "local-only switch: the template accepts only https:// endpoints and never sets it"
)

logger = logging.getLogger("demo")


# ------------------------------------------------------------------------------------ Lambda-side logs


class CapturedLogs(logging.Handler):
    """Keeps what the handlers log (as CloudWatch would), so the console shows only the story."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: collections.deque[logging.LogRecord] = collections.deque(maxlen=500)
        self.summaries: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        summary = getattr(record, "summary", None)
        if record.name == "forwarder.summary" and isinstance(summary, dict):
            self.summaries.append(summary)

    def problems(self, count: int = 6) -> list[str]:
        """The last warnings and errors, one short line each."""
        lines = [
            f"{r.levelname} {r.name}: {r.getMessage()}" for r in self.records if r.levelno >= logging.WARNING
        ]
        return [line if len(line) <= 220 else line[:217] + "..." for line in lines[-count:]]


# ----------------------------------------------------------------------------------------------- state


@dataclass(slots=True)
class Run:
    """What the steps share."""

    args: argparse.Namespace
    console: Console
    logs: CapturedLogs
    workdir: Path
    aws: demo_aws.EmbeddedAws = field(default_factory=lambda: demo_aws.EmbeddedAws(REGION))
    account: demo_aws.Account = field(default_factory=lambda: demo_aws.Account(REGION))
    ingest: Any = None  # IngestReceiver, once start_servers ran
    cfn: Any = None  # ResponseReceiver, once start_servers ran
    stand_in: demo_aws.LambdaStandIn | None = None
    template: dict[str, Any] = field(default_factory=dict)
    resolver: demo_template.Resolver | None = None
    stack_id: str = ""
    provisioner_arn: str = ""
    provisioner_timeout: float = 300.0
    forwarder_timeout: float = 300.0
    logical_id: str = ""
    properties: dict[str, str] = field(default_factory=dict)
    physical_id: str = ""
    data: dict[str, str] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)
    files: list[demo_logs.LogFile] = field(default_factory=list)
    write_started: float = 0.0
    forwarder_seconds: float = 0.0
    invocations: int = 0
    test_events: int = 0
    token: str = ""
    log_events: list[dict[str, Any]] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ steps


def start_servers(run: Run) -> None:
    console = run.console
    with console.step("embedded AWS: moto's server on 127.0.0.1"):
        endpoint = run.aws.start()
        console.detail(f"{endpoint}  (moto {moto.__version__}; AWS_ENDPOINT_URL points boto3 here)")
        console.note("credentials are fake and valid nowhere else; nothing leaves this machine")
    run.token = token = secrets.token_urlsafe(24)
    output_format = run.args.format
    auth = INTAKES[output_format].auth
    with console.step(
        f"ingest receiver for the {output_format} format: checks the {auth} credential, gunzips, "
        "validates, stores"
    ):
        expected = token if run.args.inject_fault != "wrong-token" else secrets.token_urlsafe(24)
        run.ingest = IngestReceiver(expected, output_format)
        console.detail(f"{run.ingest.url}  (answers as the {output_format} intake does)")
        if run.args.inject_fault == "wrong-token":
            console.note("fault injected: the receiver expects a different token than the one stored")
    with console.step("CloudFormation response URL: an HTTPS receiver with a private CA"):
        run.cfn = ResponseReceiver(run.workdir)
        # The provisioner answers over HTTPS only and verifies the certificate; trust this run's CA.
        provisioner_response.CA_FILE = run.cfn.ca_file
        console.detail(f"https://127.0.0.1:{run.cfn.port}/  (certificate from a CA made for this run)")


def build_account(run: Run) -> None:
    console, account = run.console, run.account
    with console.step(f"VPC, two subnets in two zones, application load balancer {ALB_NAME!r}"):
        demo_aws.create_network_and_alb(account, ALB_NAME)
        console.detail(f"{account.vpc_id}: {', '.join(account.subnets)} in {', '.join(account.zones)}")
        console.detail(account.alb_arn)
    with console.step("the load balancer already logs to the customer's bucket (SSE-S3)"):
        demo_aws.enable_existing_logging(account, LOG_BUCKET, LOG_PREFIX)
        console.detail(f"s3://{LOG_BUCKET}/{LOG_PREFIX}/, with the bucket policy the AWS documentation gives")
        console.note(
            "with LogBucketName left empty (its default) the stack reuses this bucket and prefix; a bucket "
            "the stack creates itself gets a TLS-only policy, whose condition the embedded S3 ignores "
            "(it would refuse every read), so the demo starts from a load balancer that already logs"
        )
    with console.step(f"CloudWatch Logs log group {LOG_GROUP!r}, where the web tier's nginx writes"):
        demo_aws.create_log_group(account, LOG_GROUP)
    with console.step("ingest token stored in Secrets Manager (the forwarder gets only its ARN)"):
        demo_aws.store_token(account, SECRET_NAME, run.token)
        console.detail(account.secret_arn)


def resolve_template(run: Run) -> None:
    console, account = run.console, run.account
    with console.step(f"parameters from {TEMPLATE.relative_to(ROOT)}: defaults plus the values below"):
        run.template = demo_template.load(TEMPLATE)
        given = {
            "LoadBalancerArn": account.alb_arn,
            "IngestEndpoint": run.ingest.url,
            "AuthType": run.ingest.intake.auth,
            "AuthSecretArn": account.secret_arn,
            "LogGroupNames": account.log_group,
            "CustomFormats": json.dumps(
                [{"name": GROK_FORMAT, "pattern": GROK_PATTERN, "log_group": account.log_group}]
            ),
        }
        if run.args.format != DEFAULT_OUTPUT_FORMAT:
            given["OutputFormat"] = run.args.format
        if run.args.format == "elasticsearch":
            given["ElasticsearchIndex"] = ES_INDEX
        params = demo_template.parameters(
            run.template,
            given,
            unchecked={"IngestEndpoint": "a loopback http:// receiver; the template requires https://"},
        )
        run.stack_id = f"arn:aws:cloudformation:{REGION}:{demo_aws.ACCOUNT}:stack/{STACK_NAME}/{uuid.uuid4()}"
        suffix = uuid.uuid4().hex[:12].upper()
        run.provisioner_arn = (
            f"arn:aws:lambda:{REGION}:{demo_aws.ACCOUNT}:function:{STACK_NAME}-ProvisionerFunction-{suffix}"
        )
        run.resolver = demo_template.Resolver(
            run.template,
            params.values,
            pseudo={
                "AWS::AccountId": demo_aws.ACCOUNT,
                "AWS::Region": REGION,
                "AWS::Partition": "aws",
                "AWS::StackName": STACK_NAME,
                "AWS::StackId": run.stack_id,
                "AWS::URLSuffix": "amazonaws.com",
            },
            attributes={("ProvisionerFunction", "Arn"): run.provisioner_arn},
        )
        demo_template.check_rules(run.resolver)
        if not run.resolver.condition("HasForwarder"):
            raise StepError("with these parameters the template would deploy no forwarder")
        for name in params.overridden:
            console.detail(f"{name} = {params.values[name]}")
        console.note(f"IngestEndpoint is {run.ingest.url}: {INSECURE_NOTE}")
        console.note("every other parameter keeps its Default; the template's Rules hold for these values")

    with console.step("forwarder function created in Lambda (moto stores it; the demo will run it)"):
        resolver = run.resolver
        resolver.refs["WorkQueue"] = demo_aws.create_work_queue(STACK_NAME)
        settings = {
            key: resolver.resolve(
                _property(run.template, "ForwarderFunction", key), f"ForwarderFunction.{key}"
            )
            for key in ("Handler", "Runtime", "Architectures", "MemorySize", "Timeout", "Environment")
        }
        settings["Environment"]["Variables"]["HTTP_ALLOW_INSECURE"] = "true"
        demo_aws.create_forwarder_function(account, STACK_NAME, settings)
        run.forwarder_timeout = float(settings["Timeout"])
        # The demo runs the forwarder in this process, with the environment the function was given.
        os.environ.update(settings["Environment"]["Variables"])
        console.detail(account.forwarder_arn)
        variables = settings["Environment"]["Variables"]
        listing = ", ".join(f"{k}={v}" for k, v in variables.items() if v)
        console.detail(f"environment: {listing}", wrap=True)
        timeout = resolver.resolve(_property(run.template, "ProvisionerFunction", "Timeout"), "Timeout")
        run.provisioner_timeout = float(timeout)

    with console.step("custom resource properties resolved as CloudFormation sends them (all strings)"):
        resolver = run.resolver
        resolver.attributes[("ForwarderFunction", "Arn")] = account.forwarder_arn
        run.logical_id = demo_template.find_resource(run.template, "Custom::AlbLogOnboarding")
        run.properties = demo_template.as_custom_resource_properties(
            demo_template.resource_properties(resolver, run.logical_id)
        )
        width = max(len(k) for k in run.properties)
        for key, value in run.properties.items():
            console.detail(f"{key:<{width}}  {value if value else chr(34) * 2}")


def _property(template: dict[str, Any], logical_id: str, key: str) -> Any:
    properties = template["Resources"][logical_id].get("Properties") or {}
    if key not in properties:
        raise demo_template.TemplateError(f"Resources.{logical_id}.Properties has no {key}")
    return properties[key]


def custom_resource(run: Run, request_type: str) -> dict[str, Any]:
    """Send one CloudFormation request through provisioner.handler.handler; return its one answer."""
    request_id = str(uuid.uuid4())
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": run.provisioner_arn,
        "ResponseURL": run.cfn.url_for(request_id),
        "StackId": run.stack_id,
        "RequestId": request_id,
        "ResourceType": "Custom::AlbLogOnboarding",
        "LogicalResourceId": run.logical_id,
        "ResourceProperties": dict(run.properties),
    }
    if request_type != "Create":
        event["PhysicalResourceId"] = run.physical_id
    name = run.provisioner_arn.rsplit(":", 1)[-1]
    context = demo_aws.FakeLambdaContext(name, run.provisioner_arn, run.provisioner_timeout)
    provisioner_handler.handler(event, context)
    answers = run.cfn.answers_for(request_id)
    if len(answers) != 1:
        raise StepError(f"CloudFormation expects exactly one answer, the provisioner sent {len(answers)}")
    document: dict[str, Any] = answers[0].document
    if document.get("Status") != "SUCCESS":
        raise StepError(f"{request_type} answered {document.get('Status')}: {document.get('Reason')}")
    if answers[0].size >= 4096:
        raise StepError(f"the answer is {answers[0].size} bytes; CloudFormation accepts less than 4096")
    return document


def create_stack(run: Run) -> None:
    console, account = run.console, run.account
    with console.step("account state recorded (load balancer, buckets, topics, permissions)"):
        run.before = demo_aws.snapshot(account)
    with console.step("custom resource Create through provisioner.handler.handler -> SUCCESS"):
        answer = custom_resource(run, "Create")
        run.physical_id = str(answer["PhysicalResourceId"])
        run.data = {str(k): str(v) for k, v in (answer.get("Data") or {}).items()}
        missing = {"BucketName", "Prefix", "TopicArn"} - set(run.data)
        if missing:
            raise StepError(f"the answer's Data lacks {', '.join(sorted(missing))}")
        if (run.data["BucketName"], run.data["Prefix"]) != (LOG_BUCKET, LOG_PREFIX):
            raise StepError(
                f"expected the stack to reuse s3://{LOG_BUCKET}/{LOG_PREFIX}/, it chose "
                f"s3://{run.data['BucketName']}/{run.data['Prefix']}/"
            )
        for key in ("BucketName", "Prefix", "TopicArn"):
            console.detail(f"Data.{key:<10} {run.data[key]}")
    with console.step("what the stack added to the account"):
        changes = list(demo_aws.diff(run.before, demo_aws.snapshot(account), values=False))
        if not changes:
            raise StepError("Create reported SUCCESS but changed nothing")
        for line in changes:
            console.detail(line)


def deliver_logs(run: Run) -> None:
    console, account = run.console, run.account
    bucket, prefix, topic = run.data["BucketName"], run.data["Prefix"], run.data["TopicArn"]
    s3 = demo_aws.client("s3")
    with console.step("stand-in for the Lambda service subscribed to the topic (an SQS queue)"):
        run.stand_in = demo_aws.LambdaStandIn(topic, account.forwarder_arn)
        console.note(
            "moto cannot run Lambda code (no Docker), so the demo plays the Lambda service: it reads what "
            "SNS delivers and calls forwarder.handler.handler with the event Lambda would build"
        )
        # S3 sent its s3:TestEvent when the stack wrote the configuration, before the stand-in listened;
        # writing the same configuration again makes S3 send it once more (nothing else changes).
        config = s3.get_bucket_notification_configuration(Bucket=bucket)
        config.pop("ResponseMetadata", None)
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
        console.note(
            "the stack's notification configuration was written again, unchanged, so S3 repeats its "
            "s3:TestEvent"
        )

    lb = alb_logs.LoadBalancer(
        account=demo_aws.ACCOUNT,
        region=REGION,
        name=account.alb_name,
        lb_id=account.alb_id,
        target_group_arn=account.target_group_arn,
        certificate_arn=f"arn:aws:acm:{REGION}:{demo_aws.ACCOUNT}:certificate/{uuid.UUID(int=7)}",
        target_net="10.20",  # the demo VPC's 10.20.0.0/16
    )
    rng = random.Random(2025)  # reproducible sample data, not security
    files, lines = run.args.files, run.args.lines
    with console.step(f"{_plural(files, 'ALB log file')} of {lines} lines written the way ALB writes them"):
        ends = demo_logs.file_end_times(files)
        generations = alb_logs.GENERATIONS
        run.files = [
            demo_logs.make_file(
                lb,
                prefix=prefix,
                end=ends[i],
                node_ip=account.node_ips[i % len(account.node_ips)],
                lines=lines,
                fields=generations[i % len(generations)],
                malformed=2,
                rng=rng,
            )
            for i in range(files)
        ]
        run.write_started = time.monotonic()
        for log_file in run.files:
            s3.put_object(Bucket=bucket, Key=log_file.key, Body=log_file.body)
        console.detail(f"s3://{bucket}/{run.files[-1].key}")
        console.detail(
            f"field generations {', '.join(str(g) for g in generations[: min(files, 4)])}; "
            f"2 lines per file are not access log lines"
        )

    with console.step("notifications S3 -> SNS -> forwarder, the forwarder -> ingest receiver"):
        _forward_everything(run)
        console.detail(
            f"{_plural(run.invocations, 'invocation')} of forwarder.handler.handler "
            f"({_plural(len(run.files), 'log file')}, {run.test_events} s3:TestEvent "
            "ignored by the forwarder)"
        )

    with console.step("every line arrived once, parsed or counted as unparseable"):
        _check_delivery(run)


def _forward_everything(run: Run) -> None:
    stand_in, account = run.stand_in, run.account
    if stand_in is None:
        raise StepError("the Lambda stand-in is not subscribed")
    expected = {f.key for f in run.files}
    seen: set[str] = set()
    # Give up when nothing new arrives for a while (S3 -> SNS -> SQS is immediate in moto).
    deadline = time.monotonic() + IDLE_SECONDS
    name = account.forwarder_arn.rsplit(":", 1)[-1]
    metrics = io.StringIO()
    while (seen != expected or run.test_events == 0) and time.monotonic() < deadline:
        for receipt, event in stand_in.receive(wait_seconds=0 if seen == expected else 1):
            message = json.loads(event["Records"][0]["Sns"]["Message"])
            if message.get("Event") == "s3:TestEvent":
                run.test_events += 1
            for record in message.get("Records", []):
                seen.add(unquote_plus(record["s3"]["object"]["key"]))
            context = demo_aws.FakeLambdaContext(name, account.forwarder_arn, run.forwarder_timeout)
            started = time.monotonic()
            try:
                # The forwarder prints its CloudWatch metrics (EMF) to stdout; keep them off the console.
                with contextlib.redirect_stdout(metrics):
                    forwarder_handler.handler(event, context)
            except Exception as exc:
                raise StepError(
                    f"the forwarder failed: {type(exc).__name__}: {exc}. On AWS, Lambda would retry this "
                    f"event twice, then send it to the stack's dead-letter queue"
                ) from exc
            finally:
                run.forwarder_seconds += time.monotonic() - started
                run.invocations += 1
            stand_in.done(receipt)
            deadline = time.monotonic() + IDLE_SECONDS
    if seen != expected:
        raise StepError(f"no notification arrived for {len(expected - seen)} of {len(expected)} log files")
    if run.test_events == 0:
        raise StepError("S3's s3:TestEvent never reached the topic")


def _check_delivery(run: Run) -> None:
    ingest = run.ingest
    problems: list[str] = []
    if ingest.rejections:
        problems.append(
            f"the receiver refused {_plural(len(ingest.rejections), 'request')}: {ingest.rejections[0]}"
        )
    for log_file in run.files:
        tally = ingest.files.get(log_file.key)
        name = _short_name(log_file.key)
        if tally is None:
            problems.append(f"{name}: nothing arrived")
            continue
        if tally.records != log_file.lines or tally.line_numbers != set(range(1, log_file.lines + 1)):
            problems.append(f"{name}: {tally.records} records for {log_file.lines} lines")
        if tally.unparseable != log_file.malformed:
            problems.append(f"{name}: {tally.unparseable} unparseable, expected {log_file.malformed}")
    if ingest.duplicates:
        problems.append(f"{_plural(ingest.duplicates, 'duplicate event id')}")
    if problems:
        raise StepError("; ".join(problems[:5]))


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def _short_name(key: str) -> str:
    """<end-time>_<node-ip>_<random>.log.gz: what tells one file from another."""
    return "_".join(key.rsplit("/", 1)[-1].split("_")[-3:])


def report_delivery(run: Run) -> None:
    console, ingest = run.console, run.ingest
    summaries = {s.get("key"): s for s in run.logs.summaries}
    console.heading("Records received per file")
    console.detail(
        f"{'file (<end>_<node>_<random>.log.gz)':<46} {'fields':>6} {'lines':>7} {'received':>9} "
        f"{'unparseable':>11} {'batches':>7}"
    )
    examples: dict[str, str] = {}
    for log_file in run.files:
        tally = ingest.files.get(log_file.key)
        received, bad = (tally.records, tally.unparseable) if tally else (0, 0)
        for reason, raw in (tally.errors if tally else {}).items():
            examples.setdefault(reason, raw)
        batches = summaries.get(log_file.key, {}).get("batches", "?")
        console.detail(
            f"{_short_name(log_file.key):<46} {log_file.fields:>6} {log_file.lines:>7} {received:>9} "
            f"{bad:>11} {batches!s:>7}"
        )
    total = sum(f.lines for f in run.files)
    console.detail(
        f"{'total':<46} {'':>6} {total:>7} {ingest.records:>9} {ingest.unparseable:>11} {ingest.batches:>7}"
    )
    if examples:
        console.detail("unparseable lines are sent as they were, with the reason:")
    for reason, raw in list(examples.items())[:3]:
        console.detail(f"  raw={raw[:60]!r}  parse_error={reason!r}")

    sample = _sample_record(run)
    if sample is not None:
        console.heading(f"One record as the receiver got it ({run.args.format})")
        console.detail(sample)

    console.heading("Throughput")
    end_to_end = (run.ingest.last_at or time.monotonic()) - run.write_started
    console.detail(
        f"{total:,} lines in {end_to_end:.2f} s end to end = {total / max(end_to_end, 1e-9):,.0f} lines/s "
        f"(S3 put, S3 -> SNS -> stand-in, forwarder, receiver)",
        wrap=True,
    )
    object_seconds = sum(float(s.get("seconds", 0.0)) for s in run.logs.summaries)
    console.detail(
        f"inside the forwarder: {object_seconds:.2f} s for {_plural(len(run.logs.summaries), 'file')} "
        "(S3 read, parse, "
        f"JSON, gzip, POST) = {total / max(object_seconds, 1e-9):,.0f} lines/s; "
        f"{_plural(run.invocations, 'invocation')} took {run.forwarder_seconds:.2f} s with the cold start",
        wrap=True,
    )
    console.note(
        "moto, the receiver and the forwarder share one Python process here, so these are floors: on "
        "Lambda the forwarder has its own CPU"
    )


def _sample_record(run: Run) -> str | None:
    """A successful h2 request from the newest field generation written, else any parsed record, as the
    text it had in the body the receiver got."""
    newest = run.files[min(3, len(run.files) - 1)].key
    tally = run.ingest.files.get(newest)
    samples = tally.samples if tally else []
    chosen = next(
        (i for i in samples if i.record.get("type") == "h2" and i.record.get("elb_status_code") == 200), None
    )
    if chosen is None:
        chosen = next((i for t in run.ingest.files.values() for i in t.samples), None)
    return None if chosen is None else chosen.shown


def cloudwatch_logs_flow(run: Run) -> None:
    console, account = run.console, run.account
    logs = demo_aws.client("logs")
    with console.step(f"the stack's subscription filter on {account.log_group} names the forwarder"):
        filters = logs.describe_subscription_filters(logGroupName=account.log_group)["subscriptionFilters"]
        ours = [f for f in filters if f.get("destinationArn") == account.forwarder_arn]
        if len(ours) != 1:
            raise StepError(f"expected one subscription filter to the forwarder, found {len(ours)}")
        subscription = ours[0]
        pattern = subscription.get("filterPattern", "")
        console.detail(f"{subscription['filterName']}: filter pattern {pattern or chr(34) * 2} -> forwarder")
    with console.step(f"{_plural(len(NGINX_LINES), 'nginx access line')} put in {account.log_group}"):
        logs.create_log_stream(logGroupName=account.log_group, logStreamName=LOG_STREAM)
        now = int(time.time() * 1000)
        logs.put_log_events(
            logGroupName=account.log_group,
            logStreamName=LOG_STREAM,
            logEvents=[{"timestamp": now + n, "message": line} for n, line in enumerate(NGINX_LINES)],
        )
        # The ids CloudWatch Logs gave the events, as a subscription delivers them.
        found = logs.filter_log_events(
            logGroupName=account.log_group, logStreamNames=[LOG_STREAM], filterPattern=pattern
        )["events"]
        run.log_events = [
            {"id": e["eventId"], "timestamp": e["timestamp"], "message": e["message"]} for e in found
        ]
        if len(run.log_events) != len(NGINX_LINES):
            raise StepError(f"{len(run.log_events)} of {len(NGINX_LINES)} events match the filter pattern")
        console.detail(f"custom format {GROK_FORMAT!r} for log group {account.log_group}: {GROK_PATTERN}")
    with console.step("subscription delivery CloudWatch Logs -> forwarder, the forwarder -> ingest receiver"):
        console.note(
            "moto does not run subscription filters, so the demo builds the delivery as CloudWatch Logs "
            'sends it to a Lambda destination: {"awslogs": {"data": base64(gzip(JSON))}}, and calls '
            "forwarder.handler.handler with it"
        )
        document = {
            "messageType": "DATA_MESSAGE",
            "owner": demo_aws.ACCOUNT,
            "logGroup": account.log_group,
            "logStream": LOG_STREAM,
            "subscriptionFilters": [subscription["filterName"]],
            "logEvents": run.log_events,
        }
        data = base64.b64encode(gzip.compress(json.dumps(document).encode())).decode()
        name = account.forwarder_arn.rsplit(":", 1)[-1]
        context = demo_aws.FakeLambdaContext(name, account.forwarder_arn, run.forwarder_timeout)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the forwarder's EMF metrics
                forwarder_handler.handler({"awslogs": {"data": data}}, context)
        except Exception as exc:
            raise StepError(f"the forwarder failed: {type(exc).__name__}: {exc}") from exc
    with console.step(f"every event arrived once, as a typed {GROK_FORMAT} record"):
        tally = run.ingest.files.get(account.log_group)
        records = [item.record for item in tally.samples] if tally else []
        ids = sorted(str(r.get("log_event_id")) for r in records)
        if (
            tally is None
            or tally.records != len(run.log_events)
            or ids != sorted(e["id"] for e in run.log_events)
        ):
            raise StepError(
                f"{tally.records if tally else 0} records arrived for {len(run.log_events)} log events"
            )
        if tally.unparseable or run.ingest.duplicates:
            raise StepError(f"{tally.unparseable} unparseable, {run.ingest.duplicates} duplicate event ids")
        wrong = [
            r for r in records if r.get("log_type") != GROK_FORMAT or not isinstance(r.get("status"), int)
        ]
        if wrong:
            raise StepError(f"not a typed {GROK_FORMAT} record: {wrong[0]}")
        console.detail(
            _show_fields(records[1], ("log_type", "log_group", "timestamp", "http_method", "status"))
        )


def _show_fields(record: dict[str, Any], names: Sequence[str]) -> str:
    return ", ".join(f"{name}={record.get(name)!r}" for name in names)


def delete_stack(run: Run) -> None:
    console, account = run.console, run.account
    with console.step("stand-in subscription and queue removed (the stack does not own them)"):
        if run.stand_in is not None:
            run.stand_in.remove()
            run.stand_in = None
    with console.step("custom resource Delete through provisioner.handler.handler -> SUCCESS"):
        custom_resource(run, "Delete")
    with console.step("the account is back to its starting state"):
        after = demo_aws.snapshot(account)
        changes = list(demo_aws.diff(run.before, after))
        if changes:
            for line in changes[:20]:
                console.detail(line, always=True)
            raise StepError(f"{len(changes)} difference(s) with the state recorded before Create")
        for key in (
            "load balancer attributes",
            "log group subscription filters",
            "buckets",
            "topics",
            "subscriptions",
            "forwarder resource policy",
        ):
            console.detail(f"{key}: as before")
        kept = demo_aws.client("s3").list_objects_v2(Bucket=LOG_BUCKET, Prefix=f"{LOG_PREFIX}/")["KeyCount"]
        console.note(
            f"s3://{LOG_BUCKET}/{LOG_PREFIX}/ still holds the {_plural(kept, 'log file')} written: deleting "
            "the stack keeps logs"
        )


# ------------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="demo.py",
        description="Run the ALB log onboarding flow end to end on an embedded AWS (no account, no network).",
    )
    parser.add_argument("--files", type=_bounded(1, 50), default=4, help="log files to write (default 4)")
    parser.add_argument(
        "--lines", type=_bounded(10, 100_000), default=2500, help="lines per log file (default 2500)"
    )
    parser.add_argument(
        "--format",
        choices=OUTPUT_FORMATS,
        default=DEFAULT_OUTPUT_FORMAT,
        help="the stack's OutputFormat: the body the forwarder posts and the intake the receiver plays "
        f"(default {DEFAULT_OUTPUT_FORMAT})",
    )
    parser.add_argument("--quiet", action="store_true", help="print only failures and the final verdict")
    parser.add_argument(
        "--inject-fault",
        choices=FAULTS,
        help="make a step fail on purpose, to see what a failure looks like (wrong-token: the receiver "
        "expects another token than the one the forwarder presents)",
    )
    args = parser.parse_args(argv)
    if args.files * args.lines > MAX_TOTAL_LINES:
        parser.error(f"--files x --lines may be at most {MAX_TOTAL_LINES:,} lines in all")
    return args


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(quiet=args.quiet)
    logs = CapturedLogs()
    root = logging.getLogger()
    root.addHandler(logs)
    root.setLevel(logging.INFO)
    started = time.monotonic()
    title = "ALB log onboarding: the whole flow on an embedded AWS (no account, no network)"
    console.write(console.bold(title))
    with tempfile.TemporaryDirectory(prefix="alb-demo-") as workdir:
        run = Run(args=args, console=console, logs=logs, workdir=Path(workdir))
        try:
            console.heading("Local stand-ins")
            start_servers(run)
            console.heading("The customer's account before the stack")
            build_account(run)
            console.heading("Stack create")
            resolve_template(run)
            create_stack(run)
            console.heading("Log files flow")
            deliver_logs(run)
            report_delivery(run)
            console.heading("CloudWatch Logs flow")
            cloudwatch_logs_flow(run)
            console.heading("Stack delete")
            delete_stack(run)
        except KeyboardInterrupt:
            console.write("interrupted", always=True)
            return 130
        except Exception as exc:  # noqa: BLE001 - reported here; a step already printed its cross
            if console.failed_step is None:
                console.write(console.red(f"  {console.cross} {type(exc).__name__}: {exc}"), always=True)
            problems = logs.problems()
            if problems:
                console.detail("last warnings and errors logged by the Lambda code:", always=True)
            for line in problems:
                console.detail(console.dim(f"  {line}"), always=True)
            console.write("", always=True)
            console.write(
                console.red(f"{console.cross} demo failed at: {console.failed_step or 'setup'}"), always=True
            )
            return 1
        finally:
            _shutdown(run)
    total = sum(f.lines for f in run.files)
    unparseable = run.ingest.unparseable if run.ingest else 0
    console.write("", always=True)
    console.write(
        console.green(
            f"{console.tick} demo passed: {console.steps_ok} steps, {_plural(len(run.files), 'file')}, "
            f"{total:,} lines delivered as {args.format} ({unparseable} unparseable), "
            f"{_plural(len(run.log_events), 'CloudWatch Logs event')} as {GROK_FORMAT}, account restored, "
            f"{time.monotonic() - started:.1f} s"
        ),
        always=True,
    )
    return 0


def _shutdown(run: Run) -> None:
    """Stop every server this run started, whatever happened."""
    for close in (
        run.ingest.close if run.ingest is not None else None,
        run.cfn.close if run.cfn is not None else None,
        run.aws.stop,
    ):
        if close is not None:
            with contextlib.suppress(Exception):
                close()


if __name__ == "__main__":
    sys.exit(main())
