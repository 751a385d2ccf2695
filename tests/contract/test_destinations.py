"""The output formats agree everywhere: the code's registry, the template's parameter, the README's table."""

from __future__ import annotations

import re

from forwarder import config
from forwarder.destinations import DEFAULT_OUTPUT_FORMAT, OUTPUT_FORMATS, limits_for, otlp
from forwarder.destinations.elasticsearch import index_problems

from .template_model import ACCOUNT, REPO, Stack, load_template

ALB_ARN = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/web/50dc6c495c0c9188"
BULK = "https://search.example.com:9200/_bulk"


def readme_destinations() -> dict[str, str]:
    """Format name -> its row in the README's destination table."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n### Destinations\n", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `([a-z_]+)`", line)
        if match:
            rows[match.group(1)] = line
    return rows


def forwarder_environment(**parameters: str) -> dict[str, str]:
    stack = Stack(parameters={"LoadBalancerArn": ALB_ARN, "IngestEndpoint": BULK, **parameters})
    variables: dict[str, str] = stack.properties("ForwarderFunction")["Environment"]["Variables"]
    return variables


def test_template_offers_exactly_the_registered_formats() -> None:
    parameter = load_template()["Parameters"]["OutputFormat"]
    assert tuple(parameter["AllowedValues"]) == OUTPUT_FORMATS
    assert parameter["Default"] == DEFAULT_OUTPUT_FORMAT


def test_readme_has_one_row_per_registered_format() -> None:
    rows = readme_destinations()
    assert tuple(rows) == OUTPUT_FORMATS
    assert "Any 2xx counts as accepted" in rows["json"]
    for row in rows.values():
        assert row.count(" | ") == 5, row  # URL, auth, settings, intake side, what delivered means


def test_format_and_index_reach_the_forwarder_environment() -> None:
    variables = forwarder_environment(OutputFormat="elasticsearch", ElasticsearchIndex="alb-logs-%Y.%m.%d")
    assert (variables[config.OUTPUT_FORMAT], variables[config.ES_INDEX]) == (
        "elasticsearch",
        "alb-logs-%Y.%m.%d",
    )
    parsed = config.Config.from_env(variables)
    assert (parsed.output_format, parsed.es_index) == ("elasticsearch", "alb-logs-%Y.%m.%d")


def test_forwarder_group_holds_the_format_parameters() -> None:
    groups = load_template()["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    forwarder = next(g for g in groups if g["Label"]["default"].startswith("Forwarder ("))
    assert {"OutputFormat", "ElasticsearchIndex"} <= set(forwarder["Parameters"])


def test_elasticsearch_without_an_index_is_refused_by_the_stack_and_the_forwarder() -> None:
    stack = Stack(
        parameters={"LoadBalancerArn": ALB_ARN, "IngestEndpoint": BULK, "OutputFormat": "elasticsearch"}
    )
    assert any("needs ElasticsearchIndex" in failure for failure in stack.rule_failures())
    variables = forwarder_environment(OutputFormat="elasticsearch")
    try:
        config.Config.from_env(variables)
    except config.ConfigError as exc:
        assert "ES_INDEX is required" in str(exc)
    else:
        raise AssertionError("the forwarder accepted elasticsearch without ES_INDEX")


def test_index_names_the_template_allows_are_ones_the_forwarder_accepts() -> None:
    pattern = load_template()["Parameters"]["ElasticsearchIndex"]["AllowedPattern"]
    for name in ("alb-logs-%Y.%m.%d", "logs-alb-prod", "alb_%Y%m%d%H", "0-alb"):
        assert re.fullmatch(pattern, name), name
        assert index_problems(name) == [], name
    for name in ("Alb", "_alb", "-alb", ".alb", "alb logs", "alb-%y", "alb:logs", "alb,x"):
        assert not re.fullmatch(pattern, name), name


ENDPOINTS = {
    "elasticsearch": BULK,
    "splunk_hec": "https://splunk.example.com:8088/services/collector/event",
    "loki": "https://loki.example.com/loki/api/v1/push",
    "datadog": "https://http-intake.logs.datadoghq.com/api/v2/logs",
}


def test_the_stack_default_batch_limits_are_each_formats_intake_limits() -> None:
    for name in OUTPUT_FORMATS:
        endpoint = ENDPOINTS.get(name, "https://logs.example.com/in")
        variables = forwarder_environment(
            IngestEndpoint=endpoint, OutputFormat=name, ElasticsearchIndex="alb"
        )
        parsed = config.Config.from_env(variables)
        limits = limits_for(name)
        assert (parsed.batch_max_records, parsed.batch_max_bytes) == (limits.max_records, limits.max_bytes), (
            name
        )


def test_destination_settings_offer_exactly_the_names_the_forwarder_reads() -> None:
    pattern = load_template()["Parameters"]["DestinationSettings"]["AllowedPattern"]
    names = set(re.findall(r"[A-Z][A-Z_]+", pattern))
    assert names == set(config.DESTINATION_SETTING_NAMES)
    value = "SPLUNK_ACK=true; SPLUNK_INDEX=alb;DD_TAGS=env:prod,team:web"
    assert re.fullmatch(pattern, value)
    assert not re.fullmatch(pattern, "HTTP_ENDPOINT=https://elsewhere.example.com")
    variables = forwarder_environment(
        IngestEndpoint=ENDPOINTS["splunk_hec"], OutputFormat="splunk_hec", DestinationSettings=value
    )
    parsed = config.Config.from_env(variables)
    assert (parsed.splunk_ack, parsed.splunk_index, parsed.dd_tags) == (True, "alb", "env:prod,team:web")


def test_readme_lists_every_destination_setting() -> None:
    text = (REPO / "README.md").read_text()
    for name in (*config.DESTINATION_SETTING_NAMES, config.DESTINATION_SETTINGS):
        assert f"| `{name}` |" in text, name


def test_readme_otlp_row_promises_what_the_encoder_and_reader_do() -> None:
    row = readme_destinations()["otlp"]
    retried = re.search(r"; ([\d, and]+) are retried", row)
    assert retried is not None, row
    assert {int(s) for s in re.findall(r"\d+", retried.group(1))} == otlp.RETRYABLE_STATUSES
    # Every dotted attribute name the row lists is one the encoder writes for an ALB access record or a
    # CloudWatch Logs message.
    record = {
        "log_type": "alb_access",
        "elb": "app/web/50dc6c495c0c9188",
        "http_method": "GET",
        "request_url": "https://a.example.com:443/",
        "http_version": "HTTP/2.0",
        "elb_status_code": 200,
        "client_ip": "203.0.113.7",
        "client_port": 52344,
        "user_agent": "curl/8.5.0",
        "ssl_protocol": "TLSv1.3",
        "domain_name": "a.example.com",
        "received_bytes": 412,
        "sent_bytes": 1211,
        "s3_bucket": "logs",
        "s3_key": "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2025/03/14/x.log.gz",
        "event_id": "e",
    }
    cloudwatch = {"log_type": "raw", "raw": "x", "owner": "123456789012", "log_group": "g", "log_stream": "s"}
    destination = otlp.OtlpLogs(config.Config(endpoint="https://c.example.com/v1/logs"))
    encoded = destination.encode(record) + destination.encode(cloudwatch)
    written = set(re.findall(r'"key":"([a-z0-9_.]+)"', encoded.decode()))
    promised = {name for name in re.findall(r"`([a-z_]+\.[a-z0-9_.]+)`", row)}
    assert promised and promised <= written, promised - written
