"""The shared log line generator (scripts/common/alb_logs.py) writes what the forwarder's parser reads.

The demo, the benchmark and the functional tests all build on it: a line shape the parser does not read,
or a "bad" line it does, would make their counts mean something else.
"""

from __future__ import annotations

import gzip
import random
from datetime import UTC, datetime

import pytest
from script_modules import load_script

from forwarder.parsers import ParseError, detect_log_type
from forwarder.parsers.alb import parse_alb_access

alb_logs = load_script("common/alb_logs")

LB = alb_logs.LoadBalancer(
    account="123456789012",
    region="eu-west-1",
    name="web",
    lb_id="50dc6c495c0c9188",
    target_group_arn="arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/73e2d6bc24d8a067",
    certificate_arn="arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012",
    hosts=("www.example.com", "api.example.com"),
    target_net="10.20",
)
WHEN = datetime(2025, 3, 14, 9, 26, 53, 123456, tzinfo=UTC)
NODE_IP = "10.20.1.57"


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 -- reproducible test data, not security


@pytest.mark.parametrize("fields", [25, 29, 30, 34])
@pytest.mark.parametrize("name", list(alb_logs.KINDS))
def test_every_named_kind_parses_in_every_field_generation(name: str, fields: int) -> None:
    kind = alb_logs.KINDS[name]
    maker = alb_logs.LineMaker(LB, seeded(fields), node_ip=NODE_IP)
    record = parse_alb_access(maker.line(WHEN, kind, fields=fields))

    assert record["time"] == "2025-03-14T09:26:53.123456Z"
    assert record["elb"] == "app/web/50dc6c495c0c9188"
    assert record["type"] == kind.type
    assert (":" in record["client_ip"]) == kind.ipv6
    assert "extra_fields" not in record
    # Each generation adds its fields at the end: lists and classification, conn_trace_id, then the node.
    assert ("classification_reason" in record) == (fields >= 29)
    assert ("conn_trace_id" in record) == (fields >= 30)
    assert record.get("ip_address") == (NODE_IP if fields == 34 else None)
    if name == "malformed_request":
        assert record["elb_status_code"] == 400 and record["target_ip"] is None is record["http_method"]
    if name == "space_in_uri":
        assert " " in record["request_url"]
        assert fields == 25 or record["classification_reason"] == "SpaceInUri"
    if name in ("waf", "redirect", "lambda"):
        assert record.get("target_ip") is None


def test_the_realistic_mix_parses_and_cut_lines_never_do() -> None:
    maker = alb_logs.LineMaker(LB, seeded(7), node_ip=NODE_IP)
    for number in range(3000):
        line = maker.line(WHEN, maker.realistic_kind(), fields=alb_logs.GENERATIONS[number % 4])
        assert parse_alb_access(line)["elb"] == LB.elb
        with pytest.raises(ParseError):
            parse_alb_access(maker.cut_short(line))
    for foreign in (alb_logs.NOT_A_LOG_LINE, alb_logs.HTML_ERROR_PAGE):
        with pytest.raises(ParseError):
            parse_alb_access(foreign)


def test_the_same_seed_gives_the_same_lines() -> None:
    def lines(seed: int) -> list[str]:
        maker = alb_logs.LineMaker(LB, seeded(seed))
        return [maker.line(WHEN, maker.realistic_kind(), fields=34) for _ in range(200)]

    assert lines(3) == lines(3) != lines(4)


def test_keys_are_laid_out_as_alb_writes_them() -> None:
    end = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
    key = LB.log_key(prefix="prod/web", end=end, node_ip=NODE_IP, suffix="2r6sxvm9")
    assert key == (
        "prod/web/AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2025/03/14/"
        "123456789012_elasticloadbalancing_eu-west-1_app.web.50dc6c495c0c9188_20250314T0930Z_10.20.1.57_"
        "2r6sxvm9.log.gz"
    )
    assert LB.log_key(prefix="", end=end, node_ip=NODE_IP, suffix="x").startswith("AWSLogs/123456789012/")
    assert detect_log_type(key, None) == "alb_access"
    suffix = alb_logs.key_suffix(seeded(1))
    assert len(suffix) == 8 and suffix.isalnum() and suffix == suffix.lower()


def test_gzip_members_and_chunks_hold_the_lines() -> None:
    lines = [f"line {number}" for number in range(5000)]
    text = "".join(f"{line}\n" for line in lines).encode()
    one = alb_logs.gzip_lines(lines)
    three = alb_logs.gzip_lines(lines, members=3)
    assert gzip.decompress(one) == gzip.decompress(three) == text
    assert three.count(b"\x1f\x8b\x08") >= 3
    chunks = list(alb_logs.gzip_chunks([text[:1000], text[1000:]], chunk_bytes=4096))
    assert b"".join(chunks) == one  # streamed, the same bytes
    assert all(len(chunk) == 4096 for chunk in chunks[:-1]) and 0 < len(chunks[-1]) <= 4096


def test_an_unknown_kind_or_generation_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        alb_logs.Kind("h3")
    maker = alb_logs.LineMaker(LB, seeded(1))
    with pytest.raises(ValueError, match="fields must be one of"):
        maker.line(WHEN, alb_logs.KINDS["h2"], fields=31)
