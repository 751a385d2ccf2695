"""Forwarder configuration: read the environment once into a frozen value, report every problem at once."""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from forwarder.destinations import DEFAULT_OUTPUT_FORMAT, GENERIC_LIMITS, OUTPUT_FORMATS, limits_for

# Read by forwarder.formats, listed here with the others.
from forwarder.formats import CLOUDWATCH_LOG_FORMAT, CUSTOM_FORMATS, VPC_FLOW_LOG_FORMAT, FormatSettings
from forwarder.geo import GEOIP_DATABASE_S3_URI, S3Location, parse_s3_uri

logger = logging.getLogger(__name__)

# Names of the environment variables the forwarder reads. The template sets a subset of them; the contract
# tests read this tuple, so every variable the code reads must be listed here.
HTTP_ENDPOINT = "HTTP_ENDPOINT"
HTTP_ALLOW_INSECURE = "HTTP_ALLOW_INSECURE"
HTTP_AUTH_TYPE = "HTTP_AUTH_TYPE"
HTTP_AUTH_USERNAME = "HTTP_AUTH_USERNAME"
HTTP_AUTH_HEADER_NAME = "HTTP_AUTH_HEADER_NAME"
HTTP_AUTH_CREDENTIALS = "HTTP_AUTH_CREDENTIALS"
HTTP_AUTH_SECRET_ARN = "HTTP_AUTH_SECRET_ARN"  # noqa: S105 -- a variable name, not a secret
HTTP_AUTH_PARAMETER_NAME = "HTTP_AUTH_PARAMETER_NAME"
HTTP_AUTH_CACHE_SECONDS = "HTTP_AUTH_CACHE_SECONDS"
AWS_SIGV4_SERVICE = "AWS_SIGV4_SERVICE"
# Set by Lambda in every function's environment: the region the signature is made for, when the endpoint
# host does not name one.
AWS_REGION = "AWS_REGION"
INCLUDE_RAW_LINE = "INCLUDE_RAW_LINE"
HTTP_TIMEOUT_SECONDS = "HTTP_TIMEOUT_SECONDS"
HTTP_TEST_MODE = "HTTP_TEST_MODE"
HTTP_MAX_RETRIES = "HTTP_MAX_RETRIES"
HTTP_MAX_RETRY_WAIT_SECONDS = "HTTP_MAX_RETRY_WAIT_SECONDS"
HTTP_COMPRESSION_LEVEL = "HTTP_COMPRESSION_LEVEL"
BATCH_MAX_RECORDS = "BATCH_MAX_RECORDS"
BATCH_MAX_BYTES = "BATCH_MAX_BYTES"
MAX_LINE_BYTES = "MAX_LINE_BYTES"
LOG_LEVEL = "LOG_LEVEL"
OUTPUT_FORMAT = "OUTPUT_FORMAT"
ES_INDEX = "ES_INDEX"
SPLUNK_ACK = "SPLUNK_ACK"
SPLUNK_SOURCETYPE = "SPLUNK_SOURCETYPE"
SPLUNK_INDEX = "SPLUNK_INDEX"
LOKI_LABELS = "LOKI_LABELS"
LOKI_TENANT = "LOKI_TENANT"
DD_SERVICE = "DD_SERVICE"
DD_TAGS = "DD_TAGS"
OTLP_PROTOCOL = "OTLP_PROTOCOL"
ES_DOCUMENT_ID = "ES_DOCUMENT_ID"
# One variable for the settings of one format ("SPLUNK_ACK=true;SPLUNK_INDEX=alb"): the stack passes them
# through a single parameter instead of one per setting of every format.
DESTINATION_SETTINGS = "DESTINATION_SETTINGS"
DESTINATION_SETTING_NAMES = (
    ES_DOCUMENT_ID,
    SPLUNK_ACK,
    SPLUNK_SOURCETYPE,
    SPLUNK_INDEX,
    LOKI_LABELS,
    LOKI_TENANT,
    DD_SERVICE,
    DD_TAGS,
    OTLP_PROTOCOL,
)
# The stack's work queue: where an invocation queues the rest of a file it cannot finish (continuations).
WORK_QUEUE_URL = "WORK_QUEUE_URL"

ENV_VARS: tuple[str, ...] = (
    HTTP_ENDPOINT,
    HTTP_ALLOW_INSECURE,
    HTTP_AUTH_TYPE,
    HTTP_AUTH_USERNAME,
    HTTP_AUTH_HEADER_NAME,
    HTTP_AUTH_CREDENTIALS,
    HTTP_AUTH_SECRET_ARN,
    HTTP_AUTH_PARAMETER_NAME,
    HTTP_AUTH_CACHE_SECONDS,
    AWS_SIGV4_SERVICE,
    AWS_REGION,
    INCLUDE_RAW_LINE,
    HTTP_TIMEOUT_SECONDS,
    HTTP_TEST_MODE,
    HTTP_MAX_RETRIES,
    HTTP_MAX_RETRY_WAIT_SECONDS,
    HTTP_COMPRESSION_LEVEL,
    BATCH_MAX_RECORDS,
    BATCH_MAX_BYTES,
    MAX_LINE_BYTES,
    LOG_LEVEL,
    CLOUDWATCH_LOG_FORMAT,
    VPC_FLOW_LOG_FORMAT,
    OUTPUT_FORMAT,
    ES_INDEX,
    CUSTOM_FORMATS,
    SPLUNK_ACK,
    SPLUNK_SOURCETYPE,
    SPLUNK_INDEX,
    LOKI_LABELS,
    LOKI_TENANT,
    DD_SERVICE,
    DD_TAGS,
    OTLP_PROTOCOL,
    ES_DOCUMENT_ID,
    DESTINATION_SETTINGS,
    GEOIP_DATABASE_S3_URI,
    WORK_QUEUE_URL,
)

AUTH_NONE = "none"
AUTH_BEARER = "bearer"
AUTH_BASIC = "basic"
AUTH_APIKEY = "apikey"
AUTH_SPLUNK = "splunk"
# Signs each request with the function's own role (Amazon OpenSearch Service and OpenSearch Serverless).
AUTH_SIGV4 = "aws_sigv4"
AUTH_TYPES = (AUTH_NONE, AUTH_BEARER, AUTH_BASIC, AUTH_APIKEY, AUTH_SPLUNK, AUTH_SIGV4)
# Auth types that send no stored credential.
AUTH_WITHOUT_CREDENTIAL = (AUTH_NONE, AUTH_SIGV4)
# SigV4 service names: OpenSearch Service domains sign for "es", OpenSearch Serverless collections "aoss".
SIGV4_SERVICES = ("es", "aoss")
# Their endpoint hosts: search-NAME-ID.REGION.es.amazonaws.com (vpc-NAME-ID... in a VPC) and
# ID.REGION.aoss.amazonaws.com.
_SIGV4_HOST = re.compile(r"\.(?P<region>[a-z0-9-]+)\.(?P<service>es|aoss)\.amazonaws\.com$")

OUTPUT_ELASTICSEARCH = "elasticsearch"
OUTPUT_SPLUNK_HEC = "splunk_hec"
OUTPUT_LOKI = "loki"
OUTPUT_DATADOG = "datadog"
OUTPUT_OTLP = "otlp"
OTLP_LOGS_PATH = "/v1/logs"

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Defaults, documented in the README.
DEFAULT_AUTH_HEADER_NAME = "X-API-Key"
# Datadog's intake reads the API key from this header only.
DATADOG_API_KEY_HEADER = "DD-API-KEY"
DEFAULT_AUTH_CACHE_SECONDS = 300
DEFAULT_TIMEOUT_SECONDS = 30.0
# For formats without limits of their own (forwarder.destinations.limits_for gives each format's).
DEFAULT_BATCH_MAX_RECORDS = GENERIC_LIMITS.max_records
DEFAULT_BATCH_MAX_BYTES = GENERIC_LIMITS.max_bytes
DEFAULT_MAX_RETRIES = 6
# The longest wait before one retry, whatever Retry-After asks: on Lambda the invocation's deadline bounds
# waits as well, but `replay` has none, and a server answering Retry-After: 100000 would stall it for a day.
DEFAULT_MAX_RETRY_WAIT_SECONDS = 120.0
MAX_RETRY_WAIT_LIMIT = 3600.0
# Level 1 is the fast path: ISA-L when installed (~760 MiB/s, ratio 8.1 on ALB JSON), zlib level 1
# otherwise (~200 MiB/s, 7.6). Measurements in forwarder/sender.py and the README.
DEFAULT_COMPRESSION_LEVEL = 1
DEFAULT_MAX_LINE_BYTES = 65536
DEFAULT_LOG_LEVEL = "INFO"
# The Splunk Add-on for AWS indexes ELB access logs under this source type.
DEFAULT_SPLUNK_SOURCETYPE = "aws:elb:accesslogs"
# Loki labels as (name, record field or "=constant"): the log type and the load balancer.
DEFAULT_DD_SERVICE = "elb"
# OTLP/HTTP's two encodings, named as OTEL_EXPORTER_OTLP_PROTOCOL names them. JSON, the default, costs
# the forwarder less CPU (it is written with the same JSON encoder as the other formats); binary protobuf
# is the one every OTLP/HTTP receiver takes (some, such as Elastic's APM Server, take no other) and the
# smaller body.
OTLP_JSON = "http/json"
OTLP_PROTOBUF = "http/protobuf"
OTLP_PROTOCOLS = (OTLP_JSON, OTLP_PROTOBUF)
DEFAULT_OTLP_PROTOCOL = OTLP_JSON
# The _id of each _bulk document: its event_id (a resent line is answered 409, already there, instead of
# being indexed twice), or none, for the intakes that assign every id themselves: OpenSearch Serverless's
# time series and vector search collections refuse a document id ("you can't index by custom document
# ID", Amazon OpenSearch Service Developer Guide), so none is the default when requests are signed for
# aoss.
ES_DOCUMENT_ID_EVENT_ID = "event_id"
ES_DOCUMENT_ID_NONE = "none"
ES_DOCUMENT_IDS = (ES_DOCUMENT_ID_EVENT_ID, ES_DOCUMENT_ID_NONE)
DEFAULT_LOKI_LABELS: tuple[tuple[str, str], ...] = (("log_type", "log_type"), ("load_balancer", "elb"))

# Upper bounds that catch typos (a timeout of 3000 s can never fit in a Lambda invocation).
MAX_TIMEOUT_SECONDS = 900.0
MAX_BATCH_BYTES_LIMIT = 256 * 1024 * 1024


# The format each DESTINATION_SETTING_NAMES prefix belongs to.
_SETTING_FORMATS = {
    "ES": OUTPUT_ELASTICSEARCH,
    "SPLUNK": OUTPUT_SPLUNK_HEC,
    "LOKI": OUTPUT_LOKI,
    "DD": OUTPUT_DATADOG,
    "OTLP": OUTPUT_OTLP,
}


class ConfigError(ValueError):
    """One or more environment variables are missing or invalid; the message names each of them."""


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the forwarder needs to know, parsed from the environment."""

    endpoint: str
    auth_type: str = AUTH_NONE
    auth_username: str | None = None
    auth_header_name: str = DEFAULT_AUTH_HEADER_NAME
    # Never shown by repr(): a Config may end up in a log line or a traceback.
    auth_credentials: str | None = field(default=None, repr=False)
    auth_secret_arn: str | None = None
    auth_parameter_name: str | None = None
    auth_cache_seconds: int = DEFAULT_AUTH_CACHE_SECONDS
    sigv4_service: str | None = None
    sigv4_region: str | None = None
    include_raw_line: bool = False
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    test_mode: bool = False
    batch_max_records: int = DEFAULT_BATCH_MAX_RECORDS
    batch_max_bytes: int = DEFAULT_BATCH_MAX_BYTES
    max_retries: int = DEFAULT_MAX_RETRIES
    max_retry_wait_seconds: float = DEFAULT_MAX_RETRY_WAIT_SECONDS
    compression_level: int = DEFAULT_COMPRESSION_LEVEL
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    log_level: str = DEFAULT_LOG_LEVEL
    allow_insecure: bool = False
    formats: FormatSettings = field(default_factory=FormatSettings)
    output_format: str = DEFAULT_OUTPUT_FORMAT
    es_index: str | None = None
    es_document_id: str = ES_DOCUMENT_ID_EVENT_ID
    splunk_ack: bool = False
    splunk_sourcetype: str = DEFAULT_SPLUNK_SOURCETYPE
    splunk_index: str | None = None
    loki_labels: tuple[tuple[str, str], ...] = DEFAULT_LOKI_LABELS
    loki_tenant: str | None = None
    dd_service: str = DEFAULT_DD_SERVICE
    dd_tags: str | None = None
    otlp_protocol: str = DEFAULT_OTLP_PROTOCOL
    # The MaxMind DB files of geo enrichment, in order (a later one adds to the fields of an earlier one).
    geo_databases: tuple[S3Location, ...] = ()
    # None: a file not finished in one invocation fails at the deadline and is retried from the start.
    work_queue_url: str | None = None

    @property
    def credential_source(self) -> str:
        """Which kind of credential source is configured: none, plain, secret, parameter or role (sigv4)."""
        if self.auth_type in AUTH_WITHOUT_CREDENTIAL:
            return "role" if self.auth_type == AUTH_SIGV4 else "none"
        if self.auth_secret_arn:
            return "secret"
        if self.auth_parameter_name:
            return "parameter"
        return "plain"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Config:
        """Parse and validate; raise ConfigError naming every bad variable (never a secret value)."""
        problems: list[str] = []
        reader = _Reader(_with_destination_settings(environ, problems), problems)

        allow_insecure = reader.boolean(HTTP_ALLOW_INSECURE, default=False)
        endpoint = _endpoint(reader.text(HTTP_ENDPOINT), allow_insecure, problems)

        auth_type = (reader.text(HTTP_AUTH_TYPE) or AUTH_NONE).lower()
        if auth_type not in AUTH_TYPES:
            problems.append(f"{HTTP_AUTH_TYPE} must be one of {', '.join(AUTH_TYPES)} (got {auth_type!r})")
            auth_type = AUTH_NONE
        username = reader.text(HTTP_AUTH_USERNAME)
        header_name = reader.text(HTTP_AUTH_HEADER_NAME) or DEFAULT_AUTH_HEADER_NAME
        if (
            header_name == DEFAULT_AUTH_HEADER_NAME
            and (reader.text(OUTPUT_FORMAT) or "").lower() == OUTPUT_DATADOG
        ):
            header_name = DATADOG_API_KEY_HEADER  # the generic default, which Datadog does not read
        credentials = reader.text(HTTP_AUTH_CREDENTIALS)
        secret_arn = reader.text(HTTP_AUTH_SECRET_ARN)
        parameter_name = reader.text(HTTP_AUTH_PARAMETER_NAME)

        sigv4_service = sigv4_region = None
        if auth_type == AUTH_SIGV4:
            sigv4_service, sigv4_region = _sigv4_target(endpoint, reader, problems)
        if auth_type not in AUTH_WITHOUT_CREDENTIAL:
            sources = [
                name
                for name, value in (
                    (HTTP_AUTH_CREDENTIALS, credentials),
                    (HTTP_AUTH_SECRET_ARN, secret_arn),
                    (HTTP_AUTH_PARAMETER_NAME, parameter_name),
                )
                if value
            ]
            if not sources:
                problems.append(
                    f"{HTTP_AUTH_TYPE}={auth_type} needs a credential: set {HTTP_AUTH_SECRET_ARN} "
                    f"(Secrets Manager), {HTTP_AUTH_PARAMETER_NAME} (SSM SecureString) or "
                    f"{HTTP_AUTH_CREDENTIALS} (plain, discouraged)"
                )
            elif len(sources) > 1:
                problems.append(f"set exactly one credential source, not {' and '.join(sources)}")
        elif auth_type == AUTH_SIGV4 and (credentials or secret_arn or parameter_name):
            problems.append(
                f"{HTTP_AUTH_TYPE}={AUTH_SIGV4} signs with the function's own role: unset "
                f"{HTTP_AUTH_CREDENTIALS}, {HTTP_AUTH_SECRET_ARN} and {HTTP_AUTH_PARAMETER_NAME}"
            )
        if auth_type == AUTH_BASIC and not username:
            problems.append(f"{HTTP_AUTH_USERNAME} is required when {HTTP_AUTH_TYPE}=basic")
        if auth_type == AUTH_BASIC and username and ":" in username:
            problems.append(f"{HTTP_AUTH_USERNAME} must not contain ':' (HTTP basic authentication)")
        if auth_type == AUTH_APIKEY and not _is_header_token(header_name):
            problems.append(f"{HTTP_AUTH_HEADER_NAME} is not a valid HTTP header name (got {header_name!r})")

        output_format = (reader.text(OUTPUT_FORMAT) or DEFAULT_OUTPUT_FORMAT).lower()
        if output_format not in OUTPUT_FORMATS:
            problems.append(
                f"{OUTPUT_FORMAT} must be one of {', '.join(OUTPUT_FORMATS)} (got {output_format!r})"
            )
            output_format = DEFAULT_OUTPUT_FORMAT
        limits = limits_for(output_format)

        cache_seconds = reader.integer(HTTP_AUTH_CACHE_SECONDS, DEFAULT_AUTH_CACHE_SECONDS, minimum=0)
        timeout = reader.number(HTTP_TIMEOUT_SECONDS, DEFAULT_TIMEOUT_SECONDS, maximum=MAX_TIMEOUT_SECONDS)
        test_mode = reader.boolean(HTTP_TEST_MODE, default=False)
        include_raw_line = reader.boolean(INCLUDE_RAW_LINE, default=False)
        # Unset (or empty, as the template passes it): what the format's intake accepts.
        max_records = reader.integer(BATCH_MAX_RECORDS, limits.max_records, minimum=1)
        max_bytes = reader.integer(
            BATCH_MAX_BYTES, limits.max_bytes, minimum=1, maximum=MAX_BATCH_BYTES_LIMIT
        )
        max_retries = reader.integer(HTTP_MAX_RETRIES, DEFAULT_MAX_RETRIES, minimum=0, maximum=50)
        max_retry_wait = reader.number(
            HTTP_MAX_RETRY_WAIT_SECONDS, DEFAULT_MAX_RETRY_WAIT_SECONDS, maximum=MAX_RETRY_WAIT_LIMIT
        )
        level = reader.integer(HTTP_COMPRESSION_LEVEL, DEFAULT_COMPRESSION_LEVEL, minimum=1, maximum=9)
        max_line = reader.integer(MAX_LINE_BYTES, DEFAULT_MAX_LINE_BYTES, minimum=1)
        log_level = (reader.text(LOG_LEVEL) or DEFAULT_LOG_LEVEL).upper()
        if log_level not in LOG_LEVELS:
            problems.append(f"{LOG_LEVEL} must be one of {', '.join(LOG_LEVELS)} (got {log_level!r})")
            log_level = DEFAULT_LOG_LEVEL
        formats = FormatSettings.from_env(environ, problems)

        es_index = reader.text(ES_INDEX)
        serverless = auth_type == AUTH_SIGV4 and sigv4_service == "aoss"
        es_document_id = (
            reader.text(ES_DOCUMENT_ID) or (ES_DOCUMENT_ID_NONE if serverless else ES_DOCUMENT_ID_EVENT_ID)
        ).lower()
        if es_document_id not in ES_DOCUMENT_IDS:
            problems.append(
                f"{ES_DOCUMENT_ID} must be one of {', '.join(ES_DOCUMENT_IDS)} (got {es_document_id[:40]!r})"
            )
            es_document_id = ES_DOCUMENT_ID_EVENT_ID
        if output_format == OUTPUT_ELASTICSEARCH:
            from forwarder.destinations.elasticsearch import index_problems  # noqa: PLC0415 -- only for it

            problems += index_problems(es_index)
            if endpoint and not urlsplit(endpoint).path.rstrip("/").endswith("/_bulk"):
                problems.append(
                    f"{HTTP_ENDPOINT} must be the _bulk URL when {OUTPUT_FORMAT}=elasticsearch "
                    f"(https://HOST:PORT/_bulk, or .../INDEX/_bulk; got {describe_endpoint(endpoint)!r})"
                )

        splunk_ack = reader.boolean(SPLUNK_ACK, default=False)
        splunk_sourcetype = reader.text(SPLUNK_SOURCETYPE) or DEFAULT_SPLUNK_SOURCETYPE
        splunk_index = reader.text(SPLUNK_INDEX)
        if output_format == OUTPUT_SPLUNK_HEC:
            from forwarder.destinations.splunk_hec import settings_problems  # noqa: PLC0415 -- only for it

            problems += settings_problems(endpoint, splunk_sourcetype, splunk_index)
        loki_labels = DEFAULT_LOKI_LABELS
        loki_tenant = reader.text(LOKI_TENANT)
        if output_format == OUTPUT_LOKI:
            from forwarder.destinations.loki import parse_labels, tenant_problems  # noqa: PLC0415 -- only for it

            loki_labels, label_problems = parse_labels(reader.text(LOKI_LABELS))
            problems += label_problems + tenant_problems(loki_tenant)
            if endpoint and not urlsplit(endpoint).path.rstrip("/").endswith("/loki/api/v1/push"):
                problems.append(
                    f"{HTTP_ENDPOINT} must be Loki's push URL when {OUTPUT_FORMAT}=loki "
                    f"(https://HOST:3100/loki/api/v1/push; got {describe_endpoint(endpoint)!r})"
                )

        dd_service = reader.text(DD_SERVICE) or DEFAULT_DD_SERVICE
        dd_tags = reader.text(DD_TAGS)
        if output_format == OUTPUT_DATADOG:
            from forwarder.destinations.datadog import settings_problems as datadog_problems  # noqa: PLC0415

            problems += datadog_problems(endpoint, dd_service, dd_tags)

        otlp_protocol = (reader.text(OTLP_PROTOCOL) or DEFAULT_OTLP_PROTOCOL).lower()
        if otlp_protocol not in OTLP_PROTOCOLS:
            problems.append(
                f"{OTLP_PROTOCOL} must be one of {', '.join(OTLP_PROTOCOLS)} (got {otlp_protocol[:40]!r})"
            )

        geo_databases = _geo_databases(reader, problems)
        work_queue_url = reader.text(WORK_QUEUE_URL)
        if work_queue_url is not None and not _is_queue_url(work_queue_url):
            problems.append(
                f"{WORK_QUEUE_URL} must be an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME; "
                f"got {work_queue_url[:200]!r})"
            )

        if problems:
            raise ConfigError("invalid forwarder configuration: " + "; ".join(problems))

        if auth_type not in AUTH_WITHOUT_CREDENTIAL and credentials:
            logger.warning(
                "%s holds the credential in plain text in the function's environment; prefer %s or %s",
                HTTP_AUTH_CREDENTIALS,
                HTTP_AUTH_SECRET_ARN,
                HTTP_AUTH_PARAMETER_NAME,
            )
        if es_index and output_format != OUTPUT_ELASTICSEARCH:
            logger.warning("%s is ignored: it applies only to %s=elasticsearch", ES_INDEX, OUTPUT_FORMAT)
        for name in DESTINATION_SETTING_NAMES:
            applies_to = _SETTING_FORMATS[name.split("_", 1)[0]]
            if reader.text(name) and output_format != applies_to:
                logger.warning("%s is ignored: it applies only to %s=%s", name, OUTPUT_FORMAT, applies_to)
        if output_format == OUTPUT_OTLP and not urlsplit(endpoint).path.rstrip("/").endswith(OTLP_LOGS_PATH):
            # Exporters append /v1/logs to OTEL_EXPORTER_OTLP_ENDPOINT; HTTP_ENDPOINT is posted to as it is.
            logger.warning(
                "%s does not end with %s, the path OTLP/HTTP receivers take logs on (got %r)",
                HTTP_ENDPOINT,
                OTLP_LOGS_PATH,
                describe_endpoint(endpoint),
            )
        if allow_insecure and endpoint.startswith("http://"):
            logger.warning("%s=true: sending logs over plain HTTP (local testing only)", HTTP_ALLOW_INSECURE)

        return cls(
            endpoint=endpoint,
            auth_type=auth_type,
            auth_username=username if auth_type == AUTH_BASIC else None,
            auth_header_name=header_name,
            auth_credentials=credentials if auth_type not in AUTH_WITHOUT_CREDENTIAL else None,
            auth_secret_arn=secret_arn if auth_type not in AUTH_WITHOUT_CREDENTIAL else None,
            auth_parameter_name=parameter_name if auth_type not in AUTH_WITHOUT_CREDENTIAL else None,
            auth_cache_seconds=cache_seconds,
            sigv4_service=sigv4_service,
            sigv4_region=sigv4_region,
            include_raw_line=include_raw_line,
            timeout_seconds=timeout,
            test_mode=test_mode,
            batch_max_records=max_records,
            batch_max_bytes=max_bytes,
            max_retries=max_retries,
            max_retry_wait_seconds=max_retry_wait,
            compression_level=level,
            max_line_bytes=max_line,
            log_level=log_level,
            allow_insecure=allow_insecure,
            formats=formats,
            output_format=output_format,
            es_index=es_index if output_format == OUTPUT_ELASTICSEARCH else None,
            es_document_id=es_document_id,
            splunk_ack=splunk_ack,
            splunk_sourcetype=splunk_sourcetype,
            splunk_index=splunk_index,
            loki_labels=loki_labels,
            loki_tenant=loki_tenant if output_format == OUTPUT_LOKI else None,
            dd_service=dd_service,
            dd_tags=dd_tags,
            otlp_protocol=otlp_protocol,
            geo_databases=geo_databases,
            work_queue_url=work_queue_url,
        )


def _sigv4_target(endpoint: str, reader: _Reader, problems: list[str]) -> tuple[str | None, str | None]:
    """The SigV4 service and region for the endpoint: AWS_SIGV4_SERVICE or the host's, the host's region or
    AWS_REGION."""
    found = _SIGV4_HOST.search((urlsplit(endpoint).hostname or "").lower()) if endpoint else None
    service = (reader.text(AWS_SIGV4_SERVICE) or (found["service"] if found else "")).lower() or None
    if service is None:
        problems.append(
            f"{HTTP_AUTH_TYPE}={AUTH_SIGV4} needs the service to sign for: set {AWS_SIGV4_SERVICE} to es "
            "(OpenSearch Service) or aoss (OpenSearch Serverless); the endpoint host does not say"
        )
    elif service not in SIGV4_SERVICES:
        problems.append(f"{AWS_SIGV4_SERVICE} must be one of {', '.join(SIGV4_SERVICES)} (got {service!r})")
        service = None
    region = found["region"] if found else reader.text(AWS_REGION)
    if region is None:
        problems.append(
            f"{HTTP_AUTH_TYPE}={AUTH_SIGV4} needs the region to sign for: the endpoint host does not name "
            f"one and {AWS_REGION} is not set"
        )
    return service, region


def _with_destination_settings(environ: Mapping[str, str], problems: list[str]) -> Mapping[str, str]:
    """``environ`` plus the NAME=value pairs of DESTINATION_SETTINGS (";"-separated; values may hold ",")."""
    text = environ.get(DESTINATION_SETTINGS, "").strip()
    if not text:
        return environ
    merged = dict(environ)
    for item in filter(None, (part.strip() for part in text.split(";"))):
        name, is_pair, value = item.partition("=")
        name = name.strip()
        if not is_pair or name not in DESTINATION_SETTING_NAMES:
            problems.append(
                f"{DESTINATION_SETTINGS} takes NAME=value pairs separated by ';' with NAME one of "
                f"{', '.join(DESTINATION_SETTING_NAMES)} (got {name!r})"
            )
        elif environ.get(name, "").strip():
            problems.append(f"{name} is set both on its own and in {DESTINATION_SETTINGS}; keep one")
        else:
            merged[name] = value.strip()
    return merged


def _is_queue_url(url: str) -> bool:
    """SCHEME://HOST/ACCOUNT/NAME, what CreateQueue and the stack's output give (http for an emulator)."""
    parts = urlsplit(url)
    return (
        parts.scheme in ("https", "http")
        and bool(parts.netloc)
        and len(parts.path.strip("/").split("/")) == 2
    )


def _geo_databases(reader: _Reader, problems: list[str]) -> tuple[S3Location, ...]:
    """s3://bucket/key URIs separated by commas: GeoLite2-City and GeoLite2-ASN are two files."""
    databases: list[S3Location] = []
    for value in filter(
        None, (item.strip() for item in (reader.text(GEOIP_DATABASE_S3_URI) or "").split(","))
    ):
        location = parse_s3_uri(value)
        if location is None:
            problems.append(
                f"{GEOIP_DATABASE_S3_URI} takes s3://bucket/key URIs of .mmdb files, separated by commas "
                f"(got {value[:200]!r})"
            )
        else:
            databases.append(location)
    return tuple(databases)


class _Reader:
    """Reads typed values, appending a problem (and returning the default) when one is bad."""

    __slots__ = ("_environ", "_problems")

    def __init__(self, environ: Mapping[str, str], problems: list[str]) -> None:
        self._environ = environ
        self._problems = problems

    def text(self, name: str) -> str | None:
        # The template passes "" for parameters the user left empty: treat it as unset.
        value = self._environ.get(name, "").strip()
        return value or None

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self.text(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        self._problems.append(f"{name} must be true or false (got {value!r})")
        return default

    def integer(self, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        value = self.text(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self._problems.append(f"{name} must be a whole number (got {value!r})")
            return default
        if number < minimum or (maximum is not None and number > maximum):
            self._problems.append(f"{name} must be {_range_text(minimum, maximum)} (got {number})")
            return default
        return number

    def number(self, name: str, default: float, *, maximum: float) -> float:
        value = self.text(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            self._problems.append(f"{name} must be a number of seconds (got {value!r})")
            return default
        if not 0 < number <= maximum:  # also rejects nan
            self._problems.append(f"{name} must be greater than 0 and at most {maximum:g} (got {value})")
            return default
        return number


def _range_text(minimum: int, maximum: int | None) -> str:
    if maximum is None:
        return f"at least {minimum}"
    return f"between {minimum} and {maximum}"


def _endpoint(value: str | None, allow_insecure: bool, problems: list[str]) -> str:
    if value is None:
        problems.append(f"{HTTP_ENDPOINT} is required (the https:// URL logs are posted to)")
        return ""
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if parts is None or not parts.hostname or not port_ok:
        problems.append(f"{HTTP_ENDPOINT} is not a valid URL (got {describe_endpoint(value)!r})")
        return ""
    if parts.scheme == "https" or (parts.scheme == "http" and allow_insecure):
        return value
    if parts.scheme == "http":
        problems.append(
            f"{HTTP_ENDPOINT} must use https:// (plain http:// only with {HTTP_ALLOW_INSECURE}=true, "
            "for local testing)"
        )
    else:
        problems.append(f"{HTTP_ENDPOINT} must be an https:// URL (got scheme {parts.scheme!r})")
    return ""


def describe_endpoint(url: str) -> str:
    """The endpoint as scheme://host[:port]/path: no credentials, no query string (it may hold a key)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return f"{parts.scheme}://{netloc}{parts.path}"


# RFC 9110 token characters.
_HEADER_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits)


def _is_header_token(name: str) -> bool:
    return bool(name) and all(ch in _HEADER_TOKEN_CHARS for ch in name)
