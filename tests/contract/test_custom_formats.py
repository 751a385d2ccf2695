"""The CustomFormats parameter and the forwarder agree: wired to CUSTOM_FORMATS, read the same way, within
Lambda's environment size limit."""

from __future__ import annotations

import json

import pytest

from forwarder.config import Config, ConfigError
from forwarder.formats import CUSTOM_FORMATS

from .template_model import load_template
from .test_template import ENDPOINT, forwarder_env, stack

# Lambda caps the environment variables of a function at 4 KB, names and values together.
LAMBDA_ENVIRONMENT_BYTES = 4096
NGINX = {
    "name": "nginx",
    "pattern": '%{IPORHOST:client} - %{NOTSPACE:user} \\[%{HTTPDATE:timestamp}\\] "%{WORD:method} '
    '%{NOTSPACE:request} HTTP/%{NUMBER:http_version}" %{NUMBER:status:int} %{NUMBER:bytes:int}',
    "s3_prefix": "nginx/",
    "log_group": "/ecs/nginx-*",
}


def config_of(**parameters: str) -> Config:
    environment = forwarder_env(stack(IngestEndpoint=ENDPOINT, **parameters))
    return Config.from_env({name: str(value) for name, value in environment.items()})


def test_the_default_configures_no_custom_format() -> None:
    assert config_of().formats.custom_formats == ()


def test_the_parameter_reaches_the_forwarder_as_custom_formats() -> None:
    value = json.dumps([NGINX])
    assert forwarder_env(stack(IngestEndpoint=ENDPOINT, CustomFormats=value))[CUSTOM_FORMATS] == value
    (custom,) = config_of(CustomFormats=value).formats.custom_formats
    assert (custom.name, custom.s3_prefixes, custom.log_groups) == ("nginx", ("nginx/",), ("/ecs/nginx-*",))


def test_a_bad_pattern_given_as_the_parameter_fails_the_forwarder_configuration() -> None:
    value = json.dumps([NGINX | {"pattern": "%{NGINXACCESS}"}])
    with pytest.raises(ConfigError, match=r"format 'nginx': unknown grok pattern %\{NGINXACCESS\}"):
        config_of(CustomFormats=value)


def longest_value(variable: str) -> int:
    """The longest value the template can give a forwarder variable: the longest of its parameter's
    AllowedValues when it is set from a parameter that has them, else 128 bytes."""
    template = load_template()
    source = template["Resources"]["ForwarderFunction"]["Properties"]["Environment"]["Variables"][variable]
    if isinstance(source, dict) and set(source) == {"Ref"} and source["Ref"] in template["Parameters"]:
        allowed = template["Parameters"][source["Ref"]].get("AllowedValues")
        if allowed:
            return max(len(str(value)) for value in allowed)
    return 128


def test_the_longest_value_allowed_fits_in_the_lambda_environment() -> None:
    longest = int(load_template()["Parameters"]["CustomFormats"]["MaxLength"])
    others = {k: v for k, v in forwarder_env(stack(IngestEndpoint=ENDPOINT)).items() if k != CUSTOM_FORMATS}
    # Every other variable at the longest value its parameter allows, or at a generous bound for it (an
    # endpoint URL, a secret ARN: 128 bytes).
    budget = sum(len(name) + longest_value(name) for name in others) + len(CUSTOM_FORMATS) + longest
    assert budget <= LAMBDA_ENVIRONMENT_BYTES, budget
