from __future__ import annotations

import logging

import pytest

from forwarder import config as cfg
from forwarder.config import Config, ConfigError, describe_endpoint
from forwarder.destinations import OUTPUT_FORMATS, destination_for

ENDPOINT = "https://logs.example.com/ingest"


def env(**values: str) -> dict[str, str]:
    base = {"HTTP_ENDPOINT": ENDPOINT}
    base.update(values)
    return base


def test_defaults_with_only_the_endpoint() -> None:
    config = Config.from_env({"HTTP_ENDPOINT": ENDPOINT, "UNRELATED": "x"})
    assert config == Config(endpoint=ENDPOINT)
    assert config.auth_type == "none"
    assert config.auth_header_name == "X-API-Key"
    assert config.timeout_seconds == 30.0
    assert config.batch_max_records == 5000
    assert config.batch_max_bytes == 4 * 1024 * 1024
    assert config.max_retries == 6
    assert config.compression_level == 1
    assert config.max_line_bytes == 65536
    assert config.auth_cache_seconds == 300
    assert config.test_mode is False
    assert config.log_level == "INFO"
    assert config.credential_source == "none"


def test_every_value_set() -> None:
    config = Config.from_env(
        env(
            HTTP_AUTH_TYPE="Basic",
            HTTP_AUTH_USERNAME="ingest",
            HTTP_AUTH_PARAMETER_NAME="/alb/ingest-password",
            HTTP_AUTH_CACHE_SECONDS="60",
            HTTP_TIMEOUT_SECONDS="2.5",
            HTTP_TEST_MODE="TRUE",
            HTTP_MAX_RETRIES="0",
            HTTP_COMPRESSION_LEVEL="6",
            BATCH_MAX_RECORDS="1000",
            BATCH_MAX_BYTES="1048576",
            MAX_LINE_BYTES="16384",
            LOG_LEVEL="debug",
        )
    )
    assert config.auth_type == "basic"
    assert config.auth_username == "ingest"
    assert config.auth_parameter_name == "/alb/ingest-password"
    assert config.credential_source == "parameter"
    assert config.auth_cache_seconds == 60
    assert config.timeout_seconds == 2.5
    assert config.test_mode is True
    assert config.max_retries == 0
    assert config.compression_level == 6
    assert config.batch_max_records == 1000
    assert config.batch_max_bytes == 1048576
    assert config.max_line_bytes == 16384
    assert config.log_level == "DEBUG"


def test_empty_strings_count_as_unset() -> None:
    # The template passes "" for every parameter the user left empty.
    config = Config.from_env(
        env(
            HTTP_AUTH_TYPE="",
            HTTP_AUTH_USERNAME="",
            HTTP_AUTH_HEADER_NAME="",
            HTTP_AUTH_SECRET_ARN="",
            HTTP_TIMEOUT_SECONDS="",
            HTTP_TEST_MODE="",
            BATCH_MAX_RECORDS="",
            BATCH_MAX_BYTES="",
            LOG_LEVEL="",
        )
    )
    assert config == Config(endpoint=ENDPOINT)


def test_missing_endpoint() -> None:
    with pytest.raises(ConfigError, match="HTTP_ENDPOINT is required"):
        Config.from_env({})


def test_plain_http_needs_explicit_permission() -> None:
    with pytest.raises(ConfigError, match=r"HTTP_ENDPOINT must use https://.*HTTP_ALLOW_INSECURE"):
        Config.from_env({"HTTP_ENDPOINT": "http://127.0.0.1:8080/ingest"})
    config = Config.from_env({"HTTP_ENDPOINT": "http://127.0.0.1:8080/ingest", "HTTP_ALLOW_INSECURE": "true"})
    assert config.endpoint == "http://127.0.0.1:8080/ingest"
    assert config.allow_insecure is True


@pytest.mark.parametrize(
    "url", ["ftp://logs.example.com/x", "logs.example.com/ingest", "https://", "https://host:99999/x"]
)
def test_bad_endpoint_urls(url: str) -> None:
    with pytest.raises(ConfigError, match="HTTP_ENDPOINT"):
        Config.from_env({"HTTP_ENDPOINT": url})


def test_every_bad_variable_is_named_in_one_error() -> None:
    bad = {
        "HTTP_ENDPOINT": "http://logs.example.com/x",
        "HTTP_AUTH_TYPE": "oauth",
        "HTTP_AUTH_CACHE_SECONDS": "-1",
        "HTTP_TIMEOUT_SECONDS": "0",
        "HTTP_TEST_MODE": "yes",
        "HTTP_MAX_RETRIES": "many",
        "HTTP_COMPRESSION_LEVEL": "10",
        "BATCH_MAX_RECORDS": "0",
        "BATCH_MAX_BYTES": "1.5MB",
        "MAX_LINE_BYTES": "-4",
        "LOG_LEVEL": "verbose",
        "HTTP_ALLOW_INSECURE": "1",
    }
    with pytest.raises(ConfigError) as caught:
        Config.from_env(bad)
    message = str(caught.value)
    for name in bad:
        assert name in message, name
    # One problem per variable, separated so a person can read them.
    assert message.count(";") >= len(bad) - 1


@pytest.mark.parametrize("value", ["yes", "no", "1", "0", "on", "truee"])
def test_booleans_accept_only_true_or_false(value: str) -> None:
    with pytest.raises(ConfigError, match="HTTP_TEST_MODE must be true or false"):
        Config.from_env(env(HTTP_TEST_MODE=value))


@pytest.mark.parametrize("value", ["true", "TRUE", "True", " true "])
def test_boolean_true_any_case(value: str) -> None:
    assert Config.from_env(env(HTTP_TEST_MODE=value)).test_mode is True


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1e3", "2.0"])
def test_batch_records_must_be_a_positive_whole_number(value: str) -> None:
    with pytest.raises(ConfigError, match="BATCH_MAX_RECORDS"):
        Config.from_env(env(BATCH_MAX_RECORDS=value))


@pytest.mark.parametrize("value", ["0", "-2", "nan", "inf", "901", "soon"])
def test_timeout_must_be_positive_and_plausible(value: str) -> None:
    with pytest.raises(ConfigError, match="HTTP_TIMEOUT_SECONDS"):
        Config.from_env(env(HTTP_TIMEOUT_SECONDS=value))


def test_auth_type_needs_a_credential_source() -> None:
    with pytest.raises(ConfigError, match="HTTP_AUTH_TYPE=bearer needs a credential"):
        Config.from_env(env(HTTP_AUTH_TYPE="bearer"))


def test_only_one_credential_source() -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env(
            env(
                HTTP_AUTH_TYPE="bearer",
                HTTP_AUTH_SECRET_ARN="arn:aws:secretsmanager:us-east-1:123456789012:secret:ingest-AbCdEf",
                HTTP_AUTH_PARAMETER_NAME="/ingest/token",
            )
        )
    assert "HTTP_AUTH_SECRET_ARN and HTTP_AUTH_PARAMETER_NAME" in str(caught.value)


def test_basic_needs_a_username_without_colon() -> None:
    with pytest.raises(ConfigError, match="HTTP_AUTH_USERNAME is required"):
        Config.from_env(env(HTTP_AUTH_TYPE="basic", HTTP_AUTH_PARAMETER_NAME="/p"))
    with pytest.raises(ConfigError, match="HTTP_AUTH_USERNAME must not contain ':'"):
        Config.from_env(env(HTTP_AUTH_TYPE="basic", HTTP_AUTH_USERNAME="a:b", HTTP_AUTH_PARAMETER_NAME="/p"))


def test_apikey_header_name() -> None:
    config = Config.from_env(env(HTTP_AUTH_TYPE="apikey", HTTP_AUTH_PARAMETER_NAME="/p"))
    assert config.auth_header_name == "X-API-Key"
    config = Config.from_env(
        env(HTTP_AUTH_TYPE="apikey", HTTP_AUTH_HEADER_NAME="DD-API-KEY", HTTP_AUTH_PARAMETER_NAME="/p")
    )
    assert config.auth_header_name == "DD-API-KEY"
    with pytest.raises(ConfigError, match="HTTP_AUTH_HEADER_NAME is not a valid HTTP header name"):
        Config.from_env(
            env(HTTP_AUTH_TYPE="apikey", HTTP_AUTH_HEADER_NAME="X Key:", HTTP_AUTH_PARAMETER_NAME="/p")
        )


def test_credential_sources_ignored_when_auth_is_none() -> None:
    config = Config.from_env(env(HTTP_AUTH_CREDENTIALS="tok", HTTP_AUTH_SECRET_ARN="arn:x"))
    assert config.auth_credentials is None
    assert config.auth_secret_arn is None
    assert config.credential_source == "none"


def test_plain_credential_warns_without_the_value(caplog: pytest.LogCaptureFixture) -> None:
    secret = "plain-Secret-Value-123"
    with caplog.at_level(logging.WARNING, logger="forwarder.config"):
        config = Config.from_env(env(HTTP_AUTH_TYPE="bearer", HTTP_AUTH_CREDENTIALS=secret))
    assert config.credential_source == "plain"
    warnings = [r for r in caplog.records if r.name == "forwarder.config"]
    assert len(warnings) == 1
    assert "discouraged" in warnings[0].getMessage() or "prefer" in warnings[0].getMessage()
    assert secret not in caplog.text
    assert secret not in repr(config)


def test_errors_never_echo_secrets() -> None:
    secret = "hunter2-very-secret"
    with pytest.raises(ConfigError) as caught:
        Config.from_env(
            {
                "HTTP_ENDPOINT": f"ftp://user:{secret}@logs.example.com/in?api_key={secret}",
                "HTTP_AUTH_TYPE": "basic",
                "HTTP_AUTH_CREDENTIALS": secret,
            }
        )
    assert secret not in str(caught.value)
    assert "HTTP_AUTH_USERNAME" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://logs.example.com/v1/input?api_key=abc", "https://logs.example.com/v1/input"),
        ("https://user:pw@logs.example.com:8443/in", "https://logs.example.com:8443/in"),
        ("https://[2001:db8::1]:443/x", "https://[2001:db8::1]:443/x"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
    ],
)
def test_describe_endpoint_drops_credentials_and_query(url: str, shown: str) -> None:
    assert describe_endpoint(url) == shown


def test_env_var_names_are_all_listed() -> None:
    names = {value for name, value in vars(cfg).items() if name.isupper() and value == name}
    assert names == set(cfg.ENV_VARS)


def test_output_format_defaults_to_json_and_is_validated() -> None:
    assert Config.from_env(env()).output_format == "json"
    assert Config.from_env(env(OUTPUT_FORMAT="NDJSON")).output_format == "ndjson"
    valid = ", ".join(OUTPUT_FORMATS)
    with pytest.raises(ConfigError, match=rf"OUTPUT_FORMAT must be one of {valid} \(got 'gelf'\)"):
        Config.from_env(env(OUTPUT_FORMAT="gelf"))


def test_elasticsearch_needs_an_index_and_the_bulk_url() -> None:
    config = Config.from_env(
        env(
            OUTPUT_FORMAT="elasticsearch",
            ES_INDEX="alb-%Y.%m",
            HTTP_ENDPOINT="https://es.example.com:9200/_bulk",
        )
    )
    assert (config.output_format, config.es_index) == ("elasticsearch", "alb-%Y.%m")
    with pytest.raises(ConfigError) as caught:
        Config.from_env(env(OUTPUT_FORMAT="elasticsearch"))
    message = str(caught.value)
    assert "ES_INDEX is required when OUTPUT_FORMAT=elasticsearch" in message
    assert "HTTP_ENDPOINT must be the _bulk URL when OUTPUT_FORMAT=elasticsearch" in message


def test_es_index_is_ignored_with_a_warning_for_other_formats(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert Config.from_env(env(ES_INDEX="alb")).es_index is None
    assert "ES_INDEX is ignored" in caplog.text


def test_destination_settings_are_name_value_pairs_of_the_format_settings() -> None:
    parsed = Config.from_env(
        env(
            HTTP_ENDPOINT="https://h:8088/services/collector/event",
            OUTPUT_FORMAT="splunk_hec",
            DESTINATION_SETTINGS="SPLUNK_ACK=true ; SPLUNK_INDEX=alb;",
        )
    )
    assert (parsed.splunk_ack, parsed.splunk_index) == (True, "alb")
    with pytest.raises(
        ConfigError, match=r"DESTINATION_SETTINGS takes NAME=value pairs .* \(got 'HTTP_ENDPOINT'\)"
    ):
        Config.from_env(env(DESTINATION_SETTINGS="HTTP_ENDPOINT=https://elsewhere.example.com"))
    with pytest.raises(ConfigError, match="DD_TAGS is set both on its own and in DESTINATION_SETTINGS"):
        Config.from_env(env(DD_TAGS="a:b", DESTINATION_SETTINGS="DD_TAGS=c:d"))


def test_a_format_setting_for_another_format_is_ignored_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="forwarder.config"):
        parsed = Config.from_env(env(DESTINATION_SETTINGS="SPLUNK_INDEX=alb;DD_TAGS=env:prod"))
    assert parsed.output_format == "json"
    messages = [r.getMessage() for r in caplog.records]
    assert "SPLUNK_INDEX is ignored: it applies only to OUTPUT_FORMAT=splunk_hec" in messages
    assert "DD_TAGS is ignored: it applies only to OUTPUT_FORMAT=datadog" in messages


@pytest.mark.parametrize(
    ("endpoint", "service", "region"),
    [
        ("https://search-logs-abc123.eu-west-1.es.amazonaws.com/_bulk", "es", "eu-west-1"),
        ("https://vpc-logs-abc123.us-east-2.es.amazonaws.com/alb/_bulk", "es", "us-east-2"),
        ("https://0123456789abcdef.ap-south-1.aoss.amazonaws.com/_bulk", "aoss", "ap-south-1"),
    ],
)
def test_aws_sigv4_takes_service_and_region_from_the_opensearch_host(
    endpoint: str, service: str, region: str
) -> None:
    config = Config.from_env(
        {"HTTP_ENDPOINT": endpoint, "HTTP_AUTH_TYPE": "aws_sigv4", "AWS_REGION": "us-west-2"}
    )
    assert (config.sigv4_service, config.sigv4_region) == (service, region)
    assert config.credential_source == "role"


def test_aws_sigv4_elsewhere_needs_the_service_and_takes_the_region_of_the_function() -> None:
    with pytest.raises(ConfigError, match="set AWS_SIGV4_SERVICE to es"):
        Config.from_env(env(HTTP_AUTH_TYPE="aws_sigv4", AWS_REGION="us-west-2"))
    config = Config.from_env(
        env(HTTP_AUTH_TYPE="aws_sigv4", AWS_SIGV4_SERVICE="AOSS", AWS_REGION="us-west-2")
    )
    assert (config.sigv4_service, config.sigv4_region) == ("aoss", "us-west-2")
    with pytest.raises(ConfigError, match="AWS_REGION is not set"):
        Config.from_env(env(HTTP_AUTH_TYPE="aws_sigv4", AWS_SIGV4_SERVICE="es"))
    with pytest.raises(ConfigError, match="AWS_SIGV4_SERVICE must be one of es, aoss"):
        Config.from_env(env(HTTP_AUTH_TYPE="aws_sigv4", AWS_SIGV4_SERVICE="s3", AWS_REGION="us-west-2"))


def test_aws_sigv4_refuses_a_stored_credential() -> None:
    with pytest.raises(ConfigError, match="signs with the function's own role"):
        Config.from_env(
            env(
                HTTP_AUTH_TYPE="aws_sigv4",
                AWS_SIGV4_SERVICE="es",
                AWS_REGION="us-west-2",
                HTTP_AUTH_PARAMETER_NAME="/ingest/token",
            )
        )


def test_include_raw_line_is_a_boolean_off_by_default() -> None:
    assert Config.from_env(env()).include_raw_line is False
    assert Config.from_env(env(INCLUDE_RAW_LINE="TRUE")).include_raw_line is True
    with pytest.raises(ConfigError, match="INCLUDE_RAW_LINE must be true or false"):
        Config.from_env(env(INCLUDE_RAW_LINE="yes"))


@pytest.mark.parametrize(
    "url",
    [
        "https://sqs.us-east-1.amazonaws.com/123456789012/web-logs-WorkQueue-1A2B3C4D5E6F",
        "http://127.0.0.1:5000/123456789012/demo-WorkQueue",  # an emulator
    ],
)
def test_work_queue_url_is_a_queue_url(url: str) -> None:
    assert Config.from_env(env()).work_queue_url is None
    assert Config.from_env(env(WORK_QUEUE_URL=url)).work_queue_url == url


@pytest.mark.parametrize(
    "url", ["web-logs-WorkQueue", "arn:aws:sqs:us-east-1:123456789012:q", "https://sqs/q"]
)
def test_a_work_queue_given_by_name_or_arn_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="WORK_QUEUE_URL must be an SQS queue URL"):
        Config.from_env(env(WORK_QUEUE_URL=url))


def test_otlp_protocol_chooses_the_encoding_and_names_the_valid_ones() -> None:
    otlp = {"HTTP_ENDPOINT": "https://collector.example.com:4318/v1/logs", "OUTPUT_FORMAT": "otlp"}
    assert Config.from_env(env(**otlp)).otlp_protocol == "http/json"
    chosen = Config.from_env(env(**otlp, DESTINATION_SETTINGS="OTLP_PROTOCOL=HTTP/Protobuf"))
    assert chosen.otlp_protocol == "http/protobuf"
    assert destination_for(chosen).content_type == "application/x-protobuf"
    with pytest.raises(
        ConfigError, match=r"OTLP_PROTOCOL must be one of http/json, http/protobuf \(got 'grpc'\)"
    ):
        Config.from_env(env(**otlp, OTLP_PROTOCOL="grpc"))


def test_document_ids_are_event_ids_except_for_opensearch_serverless_and_name_the_valid_values() -> None:
    bulk = {"OUTPUT_FORMAT": "elasticsearch", "ES_INDEX": "alb", "AWS_REGION": "us-west-2"}
    domain = env(**bulk, HTTP_ENDPOINT="https://search-logs-abc123.eu-west-1.es.amazonaws.com/_bulk")
    collection = env(**bulk, HTTP_ENDPOINT="https://0123456789abcdef.ap-south-1.aoss.amazonaws.com/_bulk")
    assert Config.from_env(domain).es_document_id == "event_id"
    assert Config.from_env({**domain, "HTTP_AUTH_TYPE": "aws_sigv4"}).es_document_id == "event_id"
    # Signed for aoss: a time series or vector search collection refuses document ids.
    assert Config.from_env({**collection, "HTTP_AUTH_TYPE": "aws_sigv4"}).es_document_id == "none"
    search = {**collection, "HTTP_AUTH_TYPE": "aws_sigv4", "DESTINATION_SETTINGS": "ES_DOCUMENT_ID=Event_Id"}
    assert Config.from_env(search).es_document_id == "event_id"
    assert Config.from_env({**domain, "ES_DOCUMENT_ID": "none"}).es_document_id == "none"
    with pytest.raises(ConfigError, match=r"ES_DOCUMENT_ID must be one of event_id, none \(got '_id'\)"):
        Config.from_env({**domain, "ES_DOCUMENT_ID": "_id"})


def test_otlp_protocol_for_another_format_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="forwarder.config"):
        Config.from_env(env(OTLP_PROTOCOL="http/protobuf"))
    assert "OTLP_PROTOCOL is ignored: it applies only to OUTPUT_FORMAT=otlp" in caplog.text
