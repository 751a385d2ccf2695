"""Credentials that cannot be sent are refused when fetched, naming their source and the position only."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from forwarder.auth import (
    CredentialError,
    PlainCredential,
    SecretsManagerCredential,
    SsmParameterCredential,
    check_sendable,
    secret_forms,
)
from forwarder.config import Config

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:alb-ingest-token-AbCdEf"
TOKEN = "hx7Qm2vR9pLs4TzW8kNcJ3"


class FakeSecrets:
    def __init__(self, value: str) -> None:
        self.value = value

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        return {"ARN": SecretId, "SecretString": self.value}


class FakeSsm:
    def __init__(self, value: str) -> None:
        self.value = value

    def get_parameter(self, Name: str, WithDecryption: bool) -> dict[str, Any]:
        return {"Parameter": {"Name": Name, "Value": self.value}}


@pytest.mark.parametrize(
    ("value", "auth_type", "problem"),
    [
        (f"{TOKEN[:10]}\n{TOKEN[10:]}", "bearer", "contains a newline at position 11"),
        (f"{TOKEN[:3]}\r\n{TOKEN[3:]}", "apikey", "contains a carriage return at position 4"),
        (
            f"{TOKEN}\u20ac",
            "bearer",
            "contains a character that cannot be sent in an HTTP header (non-Latin-1/control) at position 23",
        ),
        (f"{TOKEN[:4]}\tx", "apikey", "(non-Latin-1/control) at position 5"),
        (f"{TOKEN[:4]}\x7f", "bearer", "(non-Latin-1/control) at position 5"),
        (f"pass\x00{TOKEN}", "basic", "a control character, which HTTP basic authentication does not allow,"),
        (f"pa\nss{TOKEN}", "basic", "contains a newline at position 3"),
    ],
)
def test_unsendable_values_are_refused_by_position(value: str, auth_type: str, problem: str) -> None:
    with pytest.raises(CredentialError) as caught:
        check_sendable(value, auth_type, f"secret {ARN}")
    message = str(caught.value)
    assert message.startswith(f"the credential in secret {ARN} contains ")
    assert problem in message
    assert not [value[i : i + 6] for i in range(len(value) - 5) if value[i : i + 6] in message]


@pytest.mark.parametrize(
    ("value", "auth_type"),
    [
        (TOKEN, "bearer"),
        ("caf\u00e9-latin-1-is-fine", "bearer"),  # http.client sends header values as Latin-1
        ("p\u00e4ss \u20ac word", "basic"),  # the Basic pair goes out as UTF-8 in base64
        ("with spaces inside", "apikey"),
    ],
)
def test_sendable_values_pass_unchanged(value: str, auth_type: str) -> None:
    assert check_sendable(value, auth_type, "HTTP_AUTH_CREDENTIALS") == value


def test_each_source_refuses_when_it_fetches() -> None:
    bad = f"{TOKEN[:5]}\n{TOKEN[5:]}"
    sources = [
        SecretsManagerCredential(lambda: FakeSecrets(bad), ARN, "bearer"),
        SecretsManagerCredential(lambda: FakeSecrets(json.dumps({"token": bad})), ARN, "bearer"),
        SsmParameterCredential(lambda: FakeSsm(bad), "/alb/ingest/token", "bearer"),
        PlainCredential(bad, "bearer"),
    ]
    messages = []
    for source in sources:
        with pytest.raises(CredentialError) as caught:
            source.fetch()
        messages.append(str(caught.value))
    assert [m.split(" contains ")[0] for m in messages] == [
        f"the credential in secret {ARN}",
        f"the credential in secret {ARN}",
        "the credential in parameter /alb/ingest/token",
        "the credential in HTTP_AUTH_CREDENTIALS",
    ]
    assert all("a newline at position 6" in m for m in messages)


def test_a_trailing_line_break_of_a_raw_secret_is_still_dropped() -> None:
    assert SecretsManagerCredential(lambda: FakeSecrets(TOKEN + "\n"), ARN, "bearer").fetch() == TOKEN


def test_secret_forms_cover_what_is_sent() -> None:
    basic = Config(endpoint="https://x", auth_type="basic", auth_username="alb", auth_credentials="p\u00e4ss")
    pair = base64.b64encode("alb:p\u00e4ss".encode()).decode()
    assert set(secret_forms(basic, "p\u00e4ss")) == {"p\u00e4ss", "p\\u00e4ss", pair}
    bearer = Config(endpoint="https://x", auth_type="bearer", auth_credentials=TOKEN)
    assert secret_forms(bearer, TOKEN) == (TOKEN,)
    assert secret_forms(bearer, None) == ()
