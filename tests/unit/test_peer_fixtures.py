"""NLB lines and IPv6 addresses against other projects' ELB parsing fixtures, where they agree with AWS docs.

The fixtures are read in place from PEER_FIXTURES (default /work/shared/peer-fixtures: each peer's log
lines byte for byte, and the values its tests expect under its own field names); the tests skip when
the folder is absent. Only fields whose meaning the AWS documentation fixes are compared; where a peer
disagrees with AWS (OTel splits the ALPN preference list at its comma, Elastic calls the NLB destination
"backend" but reads the same value) the AWS reading wins and the field is left out or mapped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from forwarder.parsers import parser_for

FIXTURES = Path(os.environ.get("PEER_FIXTURES", "/work/shared/peer-fixtures"))

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"no peer fixtures at {FIXTURES}")

# Our field -> the names peers give it (OTel semantic conventions, Elastic ECS / aws.elb.*, Vector).
PEER_NAMES = {
    "elb": ("resource:cloud.resource_id", "aws.elb.name"),
    "listener": ("aws.elb.tls.listener.resource_id", "aws.elb.listener"),
    "client_ip": ("client.address", "source.ip"),
    "client_port": ("client.port", "source.port"),
    "destination_ip": ("destination.address", "aws.elb.backend.ip"),
    "destination_port": ("destination.port", "aws.elb.backend.port"),
    "target_ip": ("destination.address",),
    "target_port": ("destination.port",),
    "connection_time": ("aws.elb.connection_time", "aws.elb.connection_time.ms"),
    "tls_handshake_time": ("aws.elb.tls_handshake_time", "aws.elb.tls_handshake_time.ms"),
    "received_bytes": ("http.request.size", "source.bytes"),
    "sent_bytes": ("http.response.size", "destination.bytes"),
    "chosen_cert_arn": ("aws.elb.chosen_cert_arn", "aws.elb.chosen_cert.arn"),
    "tls_cipher": ("tls.cipher", "aws.elb.ssl_cipher"),
    "tls_protocol_version": ("aws.elb.ssl_protocol",),
    "domain_name": ("url.domain", "destination.domain"),
    "alpn_fe_protocol": ("aws.elb.alpn_fe_protocol",),
    "alpn_be_protocol": ("aws.elb.alpn_be_protocol",),
}


def peer_cases(log_format: str) -> list[Any]:
    """(peer, line, expected values) for every peer case of one format, read from the fixtures."""
    if not FIXTURES.is_dir():
        return []
    cases = []
    for expected_file in sorted(FIXTURES.glob("*/expected.json")):
        peer = expected_file.parent
        for case in json.loads(expected_file.read_text())["cases"]:
            if case.get("format") != log_format:
                continue
            lines = (peer / case["file"]).read_text(encoding="utf-8").splitlines()
            line = lines[case["line"] - 1]
            cases.append(pytest.param(line, case["expect"], id=f"{peer.name}:{case['file']}:{case['line']}"))
    return cases


def same(ours: object, theirs: object) -> bool:
    """Equal once the peers' typing is set aside (ports as strings, milliseconds as floats)."""
    if isinstance(ours, int | float) and isinstance(theirs, int | float | str):
        return float(ours) == float(theirs)
    return ours == theirs


def compare(record: dict[str, Any], expected: dict[str, Any], fields: tuple[str, ...]) -> list[str]:
    compared = []
    for field in fields:
        for name in PEER_NAMES[field]:
            if name in expected:
                assert same(record.get(field), expected[name]), (
                    field,
                    record.get(field),
                    name,
                    expected[name],
                )
                compared.append(field)
    return compared


NLB_FIELDS = tuple(name for name in PEER_NAMES if not name.startswith("target_"))


@pytest.mark.parametrize(("line", "expected"), peer_cases("nlb_access"))
def test_nlb_lines_of_every_version_parse_as_peers_read_them(line: str, expected: dict[str, Any]) -> None:
    record = parser_for("nlb_access")(line)
    assert record["version"] in {"1.0", "2.0"}
    if expected:  # plaso only asserts that its lines parse
        assert "client_ip" in compare(record, expected, NLB_FIELDS)
    if record["version"] == "1.0":
        assert "alpn_fe_protocol" not in record


def test_the_peers_hold_a_version_1_0_nlb_line() -> None:
    assert any(param.values[0].startswith("tls 1.0 ") for param in peer_cases("nlb_access"))


@pytest.mark.parametrize(
    ("line", "expected"),
    [case for case in peer_cases("alb_access") if "[" in case.values[0].split('"', 1)[0]],
)
def test_bracketed_ipv6_alb_addresses_lose_their_brackets_as_peers_expect(
    line: str, expected: dict[str, Any]
) -> None:
    record = parser_for("alb_access")(line)
    assert compare(record, expected, ("client_ip", "client_port", "target_ip", "target_port")) == [
        "client_ip",
        "client_port",
        "target_ip",
        "target_port",
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [case for case in peer_cases("alb_access") if "client_host" in case.values[1]],
)
def test_unbracketed_ipv6_alb_addresses_split_at_the_last_colon_as_peers_expect(
    line: str, expected: dict[str, Any]
) -> None:
    record = parser_for("alb_access")(line)
    assert f"{record['client_ip']}:{record['client_port']}" == expected["client_host"]
    if expected.get("target_host"):
        assert f"{record['target_ip']}:{record['target_port']}" == expected["target_host"]
