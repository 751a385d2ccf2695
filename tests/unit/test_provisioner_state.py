"""The physical id carries what was there before Create, within CloudFormation's 1 KB."""

from __future__ import annotations

import pytest

from provisioner.errors import PhysicalIdError
from provisioner.naming import make_gen
from provisioner.state import (
    MAX_PHYSICAL_ID_BYTES,
    SOURCE_ALB,
    SOURCE_NAMED,
    AccessLogSettings,
    Record,
    decode,
    encode,
)

LB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188"


def record(**overrides: object) -> Record:
    values: dict[str, object] = {
        "gen": "0a1b2c3d",
        "load_balancer_arn": LB,
        "bucket": "team-logs",
        "bucket_source": SOURCE_NAMED,
        "bucket_created": False,
        "policy_existed": True,
        "previous_logging": AccessLogSettings(True, "old-logs", "edge/web"),
    }
    values.update(overrides)
    return Record(**values)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field() -> None:
    original = record()
    physical_id = encode(original)

    assert physical_id.startswith("alblogs:v1:0a1b2c3d:")
    assert decode(physical_id) == original


def test_the_id_holds_no_mutable_property() -> None:
    physical_id = encode(record())
    # prefix, endpoint and retention are not in it: an in-place update keeps the same id.
    assert decode(physical_id) == decode(encode(record()))
    assert "edge" not in physical_id


def test_predecessor_is_carried_one_level_deep() -> None:
    grandparent = record(gen="11111111")
    parent = record(gen="22222222", predecessor=grandparent)
    child = record(gen="33333333", bucket_source=SOURCE_ALB, predecessor=parent)

    decoded = decode(encode(child))

    assert decoded is not None and decoded.predecessor is not None
    assert decoded.predecessor.gen == "22222222"
    assert decoded.predecessor.predecessor is None


def test_placeholder_record_is_recognised_and_unprepared() -> None:
    decoded = decode(encode(Record(gen="0a1b2c3d")))
    assert decoded is not None and not decoded.prepared


def test_worst_case_record_fits_in_one_kilobyte() -> None:
    long_lb = LB.replace("/web/", "/" + "w" * 32 + "/").replace("us-east-1", "ap-southeast-4")
    bucket = "b" * 63
    settings = AccessLogSettings(True, "c" * 63, "p/" * 100)
    parent = record(gen="11111111", load_balancer_arn=long_lb, bucket=bucket, previous_logging=settings)
    child = record(load_balancer_arn=long_lb, bucket=bucket, previous_logging=settings, predecessor=parent)

    physical_id = encode(child)

    assert len(physical_id.encode()) <= MAX_PHYSICAL_ID_BYTES
    assert decode(physical_id) is not None


def test_too_large_drops_the_predecessor_first_then_refuses() -> None:
    noisy = AccessLogSettings(True, "c" * 63, "".join(f"{i:x}/" for i in range(400)))
    parent = record(gen="11111111", previous_logging=noisy)
    child = record(previous_logging=AccessLogSettings(False, "", ""), predecessor=parent)
    decoded = decode(encode(child))
    assert decoded is not None and decoded.predecessor is None

    with pytest.raises(PhysicalIdError, match="1024"):
        encode(record(previous_logging=noisy))


@pytest.mark.parametrize(
    "physical_id",
    [
        "",
        "weblogs_LogOnboarding_ABCD1234",
        "alblogs:v1:",
        "alblogs:v1:0a1b2c3d",
        "alblogs:v1:0a1b2c3d:!!!",
        "alblogs:v1:0A1B2C3D:eJyrVkrPz0nJUbJSSkksSVSqBQA0wQYT",
        "alblogs:v2:0a1b2c3d:eJyrVkrPz0nJUbJSSkksSVSqBQA0wQYT",
    ],
)
def test_ids_we_did_not_write_decode_to_none(physical_id: str) -> None:
    assert decode(physical_id) is None


def test_gen_mismatch_is_rejected() -> None:
    physical_id = encode(record())
    assert decode(physical_id.replace("0a1b2c3d", "ffffffff", 1)) is None


def test_gen_is_stable_per_request_and_differs_between_requests() -> None:
    a = make_gen("stack", "Logical", "req-1")
    assert a == make_gen("stack", "Logical", "req-1")
    assert a != make_gen("stack", "Logical", "req-2")
    assert len(a) == 8 and int(a, 16) >= 0
