"""loki: stream entries, labels from a fixed low-cardinality set, and which answers are retried."""

from __future__ import annotations

import json
from array import array

import pytest

from forwarder.config import Config, ConfigError
from forwarder.destinations import Framing
from forwarder.destinations.loki import LokiPush
from forwarder.sender import Batch, HttpResponse, iter_batches

ENDPOINT = "https://loki.example.com/loki/api/v1/push"


def config(**env: str) -> Config:
    return Config.from_env({"HTTP_ENDPOINT": ENDPOINT, "OUTPUT_FORMAT": "loki", **env})


def test_a_record_is_one_entry_with_a_nanosecond_string_and_its_json_as_the_line() -> None:
    record = {"time": "2025-03-14T09:30:00.123456Z", "elb": "app/web/1", "log_type": "alb_access", "n": 1}
    entry = json.loads(LokiPush(config()).encode(dict(record)))
    assert entry == {
        "stream": {"log_type": "alb_access", "load_balancer": "app/web/1"},
        "values": [["1741944600123456000", json.dumps(record, separators=(",", ":"))]],
    }
    unparsed = json.loads(LokiPush(config()).encode({"raw": "?", "log_type": "alb_access"}))
    assert unparsed["stream"]["load_balancer"] == "unknown"  # an empty label value is no label
    assert unparsed["values"][0][0].isdigit()  # the sending time


@pytest.mark.parametrize("log_type", ["json", "lambda_json", "raw", "apigateway_access", None])
def test_only_a_load_balancers_own_log_gives_the_load_balancer_label(log_type: str | None) -> None:
    """A message's own "elb" field (a JSON log line from CloudWatch Logs, say) is a value per line, not
    the load balancer a file of ELB logs comes from: it makes no label, so no stream per value."""
    loki = LokiPush(config())
    records = [{"log_type": log_type, "elb": f"per-request-{n}", "n": n} for n in range(3)]
    heads = {loki.encode(dict(record)).split(b'"values":[')[0] for record in records}
    assert [json.loads(head + b'"values":[]}')["stream"] for head in heads] == [
        {"log_type": log_type or "unknown", "load_balancer": "unknown"}
    ]
    for elb_log in ("alb_access", "alb_connection", "alb_health_check", "nlb_access", "classic_elb_access"):
        entry = json.loads(loki.encode({"log_type": elb_log, "elb": "app/web/1"}))
        assert entry["stream"]["load_balancer"] == "app/web/1"
    constants = LokiPush(config(LOKI_LABELS="env=prod")).encode({"log_type": log_type, "elb": ["x"]})
    assert json.loads(constants)["stream"] == {"env": "prod"}


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        ("client_ip", "may name only log_type, load_balancer, s3_bucket, log_group"),
        ("log_type,log_type", "names a label twice"),
        ("__name__=x", "bad constant label"),
        (" , ", "at least one label"),
    ],
)
def test_labels_outside_the_fixed_set_are_refused(labels: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        config(LOKI_LABELS=labels)


def test_the_endpoint_must_be_the_push_url_and_limits_default_to_lokis() -> None:
    with pytest.raises(ConfigError, match="must be Loki's push URL"):
        Config.from_env({"HTTP_ENDPOINT": "https://loki.example.com/", "OUTPUT_FORMAT": "loki"})
    parsed = config()
    assert (parsed.batch_max_records, parsed.batch_max_bytes) == (5000, 1024 * 1024)


def test_a_tenant_is_named_on_every_push_and_checked_as_loki_checks_tenant_ids() -> None:
    assert LokiPush(config()).extra_headers == ()  # a single-tenant Loki, or a gateway that adds it
    assert LokiPush(config(LOKI_TENANT="team-a_(eu)")).extra_headers == (("X-Scope-OrgID", "team-a_(eu)"),)
    for bad in ("a|b", "..", "a/b", "a b", "x" * 151, "é"):
        with pytest.raises(ConfigError, match="LOKI_TENANT must be a Loki tenant id"):
            config(LOKI_TENANT=bad)


def test_no_org_id_names_the_setting_to_set() -> None:
    answer = HttpResponse(401, None, b"no org id\n")
    verdict = LokiPush(config()).read_response(answer, Batch(bytearray(b"ab"), Framing(), array("Q", [0])))
    assert verdict.refused
    assert "multi-tenant" in verdict.failure and "LOKI_TENANT" in verdict.failure


@pytest.mark.parametrize(
    ("status", "retried"), [(204, None), (429, True), (502, True), (501, False), (400, False)]
)
def test_429_and_5xx_but_501_are_retried(status: int, retried: bool | None) -> None:
    sent = Batch(bytearray(b"ab"), Framing(), array("Q", [0, 1]))
    verdict = LokiPush(config()).read_response(HttpResponse(status, None, b""), sent)
    if retried is None:
        assert verdict.delivered
    else:
        assert (verdict.retry == (0, 1), verdict.refused) == (retried, not retried)


def test_a_body_holds_one_stream_per_label_set_with_its_entries_in_order() -> None:
    loki = LokiPush(config())
    lines = [("app/a/1", 1), ("app/b/2", 2), ("app/a/1", 3), (None, 4), ("app/b/2", 5), ("app/a/1", 6)]
    records = [
        {"time": f"2025-03-14T09:30:0{n}Z", "elb": elb, "log_type": "alb_access", "n": n} for elb, n in lines
    ]
    encoded = [loki.encode(dict(record)) for record in records]
    batch = next(iter_batches(encoded, framing=loki.framing, max_records=10, max_bytes=10**6))
    body = batch.body()
    streams = json.loads(body)["streams"]
    assert [
        (s["stream"]["load_balancer"], [json.loads(v[1])["n"] for v in s["values"]]) for s in streams
    ] == [
        ("app/a/1", [1, 3, 6]),
        ("app/b/2", [2, 5]),
        ("unknown", [4]),
    ]
    assert streams[0]["values"][1][0] == "1741944603000000000"
    assert batch.raw_bytes == len(body) < len(b",".join(encoded)) + len(b'{"streams":[]}')
    retried = json.loads(batch.subset([1, 2, 4]).body())["streams"]  # a retry body, cut from the batch
    assert [[json.loads(v[1])["n"] for v in s["values"]] for s in retried] == [[2, 5], [3]]


def test_entries_of_one_label_set_make_one_stream_even_when_a_line_quotes_the_labels() -> None:
    loki = LokiPush(config())
    record = {"time": "2025-03-14T09:30:00Z", "elb": "app/a/1", "log_type": "alb_access"}
    head = loki.encode(dict(record)).split(b'"values":[')[0].decode() + '"values":['
    records = [{**record, "n": n, "user_agent": head + ']}],"x"' if n == 2 else "curl"} for n in range(4)]
    encoded = [loki.encode(dict(r)) for r in records]
    body = next(iter_batches(encoded, framing=loki.framing, max_records=10, max_bytes=10**6)).body()
    (stream,) = json.loads(body)["streams"]
    assert stream["stream"] == {"log_type": "alb_access", "load_balancer": "app/a/1"}
    assert [json.loads(line) for _, line in stream["values"]] == records
