"""Geo enrichment end to end: MaxMind DB files written by the test, stored in (moto) S3 under the settings,
loaded once by the handler; records with a public client address arrive with `client_geo`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alb_log_factory import gzip_lines, make_alb_lines
from aws_events import (
    BUCKET,
    Stored,
    cloudwatch_logs_data,
    cloudwatch_logs_event,
    log_events,
    s3_notification,
    sns_event,
)
from geo_databases import ASN_GEO, BERLIN_V6, CITY_GEO, LONDON_V4, UNKNOWN_V4, asn_database, city_database
from ingest_server import IngestServer

from forwarder import geo
from forwarder.config import ConfigError
from forwarder.geo import GeoDatabaseError

pytest_plugins = ["conftest_forwarder"]

GEO_BUCKET = "geo-data"
CITY_KEY = "maxmind/GeoLite2-City.mmdb"
ASN_KEY = "maxmind/GeoLite2-ASN.mmdb"
KEY = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2025/03/14/x_app.my-loadbalancer_x.log.gz"
PRIVATE = ("10.0.3.7", "172.31.16.139", "192.168.1.20", "127.0.0.1", "fd00::1", "100.64.0.9")


@pytest.fixture
def databases(s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Both databases in S3; the handler downloads them into a folder of this test, not /tmp."""
    downloads = tmp_path / "lambda-tmp"
    downloads.mkdir()
    monkeypatch.setattr(geo, "DOWNLOAD_DIRECTORY", str(downloads))
    s3.create_bucket(Bucket=GEO_BUCKET)
    s3.put_object(Bucket=GEO_BUCKET, Key=CITY_KEY, Body=city_database(tmp_path))
    s3.put_object(Bucket=GEO_BUCKET, Key=ASN_KEY, Body=asn_database(tmp_path))
    return downloads


def alb_lines_from(*clients: str) -> list[str]:
    """ALB access log lines whose client is each address in turn (IPv6 unbracketed, as ALB writes it)."""
    lines = make_alb_lines(len(clients))
    out = []
    for line, client in zip(lines, clients, strict=True):
        fields = line.split(" ")
        fields[3] = f"{client}:51234"
        out.append(" ".join(fields))
    return out


def put_alb(s3: Any, lines: list[str]) -> Stored:
    etag = s3.put_object(Bucket=BUCKET, Key=KEY, Body=gzip_lines(lines))["ETag"].strip('"')
    return Stored(BUCKET, KEY, etag)


@pytest.mark.usefixtures("databases")
def test_public_clients_gain_client_geo_and_private_ones_none(
    invoke: Any, ingest: IngestServer, forwarder_env: Any, s3: Any
) -> None:
    # As the template joins its two parameters.
    forwarder_env(GEOIP_DATABASE_S3_URI=f"s3://{GEO_BUCKET}/{CITY_KEY},s3://{GEO_BUCKET}/{ASN_KEY}")
    clients = (LONDON_V4, BERLIN_V6, UNKNOWN_V4, *PRIVATE, LONDON_V4)
    invoke(sns_event(s3_notification(put_alb(s3, [*alb_lines_from(*clients), "not an ALB line"]))))
    records = ingest.records()
    assert [r.get("client_ip") for r in records] == [*clients, None]
    assert [r.get("client_geo") for r in records] == [
        CITY_GEO[LONDON_V4] | ASN_GEO[LONDON_V4],
        CITY_GEO[BERLIN_V6] | ASN_GEO[BERLIN_V6],
        *[None] * (1 + len(PRIVATE)),
        CITY_GEO[LONDON_V4] | ASN_GEO[LONDON_V4],
        None,
    ]


@pytest.mark.usefixtures("databases")
def test_a_city_database_alone_gives_location_without_the_network(
    invoke: Any, ingest: IngestServer, forwarder_env: Any, s3: Any
) -> None:
    forwarder_env(GEOIP_DATABASE_S3_URI=f"s3://{GEO_BUCKET}/{CITY_KEY},")  # no ASN database
    invoke(sns_event(s3_notification(put_alb(s3, alb_lines_from(LONDON_V4)))))
    (record,) = ingest.records()
    assert record["client_geo"] == CITY_GEO[LONDON_V4]


@pytest.mark.usefixtures("databases")
def test_waf_and_vpc_flow_clients_are_enriched(invoke: Any, ingest: IngestServer, forwarder_env: Any) -> None:
    forwarder_env(GEOIP_DATABASE_S3_URI=f",s3://{GEO_BUCKET}/{ASN_KEY}")  # no City database
    waf = {
        "timestamp": 1710408602412,
        "formatVersion": 1,
        "webaclId": "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/checkout-acl/0a1b2c3d",
        "action": "ALLOW",
        "httpRequest": {"clientIp": BERLIN_V6, "headers": []},
    }
    invoke(
        cloudwatch_logs_event(cloudwatch_logs_data(log_events(json.dumps(waf)), log_group="aws-waf-logs-x"))
    )
    forwarder_env(CLOUDWATCH_LOG_FORMAT="vpc_flow")
    head, tail = "2 123456789010 eni-1235b8ca123456789", "6 20 4249 1418530010 1418530070 ACCEPT OK"
    flow = f"{head} {LONDON_V4} 172.31.16.21 20641 443 {tail}"
    reply = f"{head} 172.31.16.21 {LONDON_V4} 443 20641 {tail}"
    invoke(cloudwatch_logs_event(cloudwatch_logs_data(log_events(flow, reply), log_group="vpc-flow")))
    waf_record, inbound, outbound = ingest.records()
    assert waf_record["log_type"] == "waf"
    assert waf_record["client_geo"] == ASN_GEO[BERLIN_V6]
    assert inbound["client_geo"] == ASN_GEO[LONDON_V4]
    assert "client_geo" not in outbound  # its source is the instance's private address


@pytest.mark.usefixtures("databases")
def test_the_database_is_downloaded_once_per_container(
    invoke: Any, ingest: IngestServer, forwarder_env: Any, s3: Any
) -> None:
    forwarder_env(GEOIP_DATABASE_S3_URI=f"s3://{GEO_BUCKET}/{CITY_KEY}")
    event = sns_event(s3_notification(put_alb(s3, alb_lines_from(LONDON_V4))))
    invoke(event)
    s3.delete_object(Bucket=GEO_BUCKET, Key=CITY_KEY)  # a second download would now fail
    invoke(event)
    assert [r["client_geo"] for r in ingest.records()] == [CITY_GEO[LONDON_V4]] * 2


def test_a_setting_that_is_not_an_s3_uri_is_a_configuration_error(invoke: Any, forwarder_env: Any) -> None:
    forwarder_env(GEOIP_DATABASE_S3_URI="https://example.com/GeoLite2-City.mmdb, s3://b/")
    with pytest.raises(ConfigError) as raised:
        invoke(cloudwatch_logs_event(cloudwatch_logs_data(log_events("x"))))
    expected = "GEOIP_DATABASE_S3_URI takes s3://bucket/key URIs of .mmdb files, separated by commas"
    assert f"{expected} (got 'https://example.com/GeoLite2-City.mmdb')" in str(raised.value)
    assert f"{expected} (got 's3://b/')" in str(raised.value)


@pytest.mark.usefixtures("databases")
@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        (
            f"s3://{GEO_BUCKET}/maxmind/missing.mmdb",
            "cannot read s3://geo-data/maxmind/missing.mmdb (NoSuchKey)",
        ),
        ("s3://no-such-geo-bucket/GeoLite2-City.mmdb", "(NoSuchBucket)"),
        (f"s3://{GEO_BUCKET}/notes.txt", "is not a MaxMind DB (.mmdb) file"),
    ],
)
def test_a_database_that_cannot_be_loaded_fails_the_invocation_naming_the_setting(
    invoke: Any, ingest: IngestServer, forwarder_env: Any, s3: Any, databases: Path, *, uri: str, reason: str
) -> None:
    s3.put_object(Bucket=GEO_BUCKET, Key="notes.txt", Body=b"not a database\n" * 100)
    forwarder_env(GEOIP_DATABASE_S3_URI=f"s3://{GEO_BUCKET}/{CITY_KEY},{uri}")
    with pytest.raises(GeoDatabaseError) as raised:
        invoke(cloudwatch_logs_event(cloudwatch_logs_data(log_events("x"))))
    assert str(raised.value).startswith("GEOIP_DATABASE_S3_URI: ")
    assert reason in str(raised.value)
    assert ingest.records() == []
    assert [p.name for p in databases.iterdir()] == ["geo-0.mmdb"]  # no half or bad file left behind
