"""Shared functional-test fixtures: fake AWS credentials and region, and moto started before any client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cfn import (
    CustomResource,
    ResponseReceiver,
    Stack,
    World,
    build_world,
    emulate_eventbridge_reads,
    provisioner_clients,
)
from moto import mock_aws

# Test modules import helpers from this plugin as well as loading it: let pytest rewrite its asserts first.
pytest.register_assert_rewrite("hostile")

REGION = "us-east-1"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials that can never reach real AWS, and the region the tests run in."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        # moto would otherwise build ~1300 sample AMIs whenever EC2 is first used (0.4 s per test).
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def aws(aws_env: None) -> Iterator[None]:
    """moto's in-process AWS, started before the test creates any client."""
    with mock_aws():
        yield


# --- provisioner: the answer receiver, the account, the custom resource ------------------------------


@pytest.fixture
def response_receiver(tmp_path: Path) -> Iterator[ResponseReceiver]:
    """A real HTTPS endpoint for CloudFormation answers; the provisioner trusts its private CA."""
    from provisioner import handler, response

    receiver = ResponseReceiver(tmp_path)
    previous = response.CA_FILE
    response.CA_FILE = receiver.ca_file
    # The crhelper resource stays cached between tests, as in a warm Lambda container; clients do not.
    handler.set_clients(None)
    try:
        yield receiver
    finally:
        response.CA_FILE = previous
        handler.set_clients(None)
        receiver.close()


@pytest.fixture
def world(aws: None) -> World:
    """The account in moto: VPC, two ALBs, an NLB, a GWLB and the forwarder function."""
    return build_world()


@pytest.fixture
def resource(response_receiver: ResponseReceiver, world: World) -> CustomResource:
    """The custom resource of a fresh stack, driven through the real handler (with clients tests can hook)."""
    from provisioner import handler

    clients = provisioner_clients(REGION)
    emulate_eventbridge_reads(clients.s3)
    handler.set_clients(clients)
    return CustomResource(Stack(response_receiver), clients)
