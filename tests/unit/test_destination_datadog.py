"""datadog: the entry's reserved attributes, its settings, the DD-API-KEY default and its limits."""

from __future__ import annotations

import json

import pytest

from forwarder.config import Config, ConfigError
from forwarder.destinations.datadog import DatadogLogs

ENDPOINT = "https://http-intake.logs.datadoghq.eu/api/v2/logs"


def config(**env: str) -> Config:
    return Config.from_env({"HTTP_ENDPOINT": ENDPOINT, "OUTPUT_FORMAT": "datadog", **env})


def test_an_entry_is_the_reserved_attributes_then_the_records_fields() -> None:
    record = {"time": "2025-03-14T09:30:00.5Z", "elb": "app/web/1", "elb_status_code": 200, "s3_key": "k"}
    entry = json.loads(DatadogLogs(config(DD_TAGS="env:prod, team:web")).encode(dict(record)))
    assert entry == {
        "ddsource": "elb",
        "service": "elb",
        "hostname": "app/web/1",
        "ddtags": "env:prod,team:web",
        "timestamp": 1741944600500,
        **record,
    }
    assert set(json.loads(DatadogLogs(config()).encode({"raw": "?"}))) == {"ddsource", "service", "raw"}


def test_the_api_key_header_defaults_to_dd_api_key_unless_named() -> None:
    key = {"HTTP_AUTH_TYPE": "apikey", "HTTP_AUTH_CREDENTIALS": "k"}
    assert config(**key).auth_header_name == "DD-API-KEY"
    assert (
        config(**key, HTTP_AUTH_HEADER_NAME="X-API-Key").auth_header_name == "DD-API-KEY"
    )  # the stack's default
    assert config(**key, HTTP_AUTH_HEADER_NAME="X-Proxy-Key").auth_header_name == "X-Proxy-Key"
    ndjson = Config.from_env({"HTTP_ENDPOINT": ENDPOINT, **key})
    assert ndjson.auth_header_name == "X-API-Key"


def test_limits_are_the_intakes_and_stay_overridable() -> None:
    assert (config().batch_max_records, config().batch_max_bytes) == (1000, 5_000_000)
    assert config(BATCH_MAX_RECORDS="200").batch_max_records == 200


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"HTTP_ENDPOINT": "https://api.datadoghq.com/api/v1/series"}, "must be Datadog's logs intake"),
        ({"DD_TAGS": "env:prod,1bad"}, "DD_TAGS must be comma-separated key:value tags"),
        ({"DD_TAGS": "env prod"}, "DD_TAGS must be"),
        ({"DD_SERVICE": "my service"}, "DD_SERVICE must be"),
    ],
)
def test_bad_datadog_settings_are_refused_by_name(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        config(**env)
