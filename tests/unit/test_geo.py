"""Geo enrichment without AWS: which field holds the client, which addresses are looked up, what one database
answer becomes, and the per-address cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import maxminddb
import pytest
from geo_databases import ASN_GEO, BERLIN_V6, CITY_GEO, LONDON_V4, UNKNOWN_V4, asn_database, city_database

from forwarder.config import Config, ConfigError
from forwarder.geo import GeoEnricher, S3Location, client_address, parse_s3_uri


@pytest.fixture
def enricher(tmp_path: Path) -> Iterator[GeoEnricher]:
    city_database(tmp_path)
    asn_database(tmp_path)
    readers = tuple(maxminddb.open_database(str(tmp_path / name)) for name in ("city.mmdb", "asn.mmdb"))
    geo = GeoEnricher(readers, cache_size=8)
    yield geo
    geo.close()


@pytest.mark.parametrize(
    ("record", "address"),
    [
        ({"log_type": "alb_access", "client_ip": "81.2.69.160"}, "81.2.69.160"),
        ({"log_type": "nlb_access", "client_ip": "2a02:8010:1::7"}, "2a02:8010:1::7"),
        ({"log_type": "vpc_flow", "srcaddr": "81.2.69.160", "dstaddr": "10.0.0.1"}, "81.2.69.160"),
        ({"log_type": "waf", "httpRequest": {"clientIp": "81.2.69.160"}}, "81.2.69.160"),
        ({"log_type": "apigateway_access", "source_ip": "81.2.69.160"}, "81.2.69.160"),
        ({"log_type": "apigateway_access", "ip": "81.2.69.160", "requestId": "x"}, "81.2.69.160"),
        ({"log_type": "vpc_flow", "srcaddr": None}, None),
        ({"raw": "x", "parse_error": "not an ALB access log line"}, None),
        ({"log_type": "waf", "httpRequest": "odd"}, None),
    ],
)
def test_the_client_address_of_each_format(record: dict[str, Any], address: str | None) -> None:
    assert client_address(record) == address


def test_city_and_asn_answers_merge_into_client_geo(enricher: GeoEnricher) -> None:
    assert enricher.lookup(LONDON_V4) == CITY_GEO[LONDON_V4] | ASN_GEO[LONDON_V4]
    assert enricher.lookup(BERLIN_V6) == CITY_GEO[BERLIN_V6] | ASN_GEO[BERLIN_V6]
    # Dual-stack listeners may write an IPv4 client as IPv4-mapped IPv6.
    assert enricher.lookup(f"::ffff:{LONDON_V4}") == enricher.lookup(LONDON_V4)


@pytest.mark.parametrize(
    "address",
    [
        UNKNOWN_V4,
        "10.1.2.3",
        "192.168.0.1",
        "127.0.0.1",
        "169.254.169.254",
        "100.64.1.1",
        "::1",
        "fe80::1",
        "fd12::1",
        "::ffff:10.0.0.1",
        "-",
        "not-an-address",
        "",
    ],
)
def test_private_unknown_and_malformed_addresses_get_nothing(enricher: GeoEnricher, address: str) -> None:
    assert enricher.lookup(address) is None


def test_private_addresses_are_not_looked_up() -> None:
    class Refusing:
        def get(self, ip: object) -> None:
            raise AssertionError(f"looked up {ip}")

    geo = GeoEnricher((Refusing(),))  # type: ignore[arg-type]
    records = [{"client_ip": "10.0.0.1"}, {"srcaddr": "fd00::7"}, {"client_ip": "127.0.0.1"}]
    assert list(geo.enrich(iter(records))) == records


def test_each_address_is_looked_up_once(enricher: GeoEnricher) -> None:
    records = [{"client_ip": LONDON_V4} for _ in range(100)] + [{"client_ip": BERLIN_V6}]
    out = list(enricher.enrich(iter(records)))
    assert [r["client_geo"]["country_code"] for r in out] == ["GB"] * 100 + ["DE"]
    info = enricher.lookup.cache_info()  # type: ignore[attr-defined]
    assert (info.misses, info.hits) == (2, 99)


@pytest.mark.parametrize(
    ("value", "location"),
    [
        ("s3://geo-data/maxmind/GeoLite2-City.mmdb", S3Location("geo-data", "maxmind/GeoLite2-City.mmdb")),
        ("s3://b/k", S3Location("b", "k")),
        ("s3://b/", None),
        ("s3://b", None),
        ("s3:///key", None),
        ("https://b.s3.amazonaws.com/k", None),
        ("b/k", None),
    ],
)
def test_s3_uris(value: str, location: S3Location | None) -> None:
    assert parse_s3_uri(value) == location


def test_the_setting_lists_databases_in_order_and_skips_empty_items() -> None:
    config = Config.from_env(
        {
            "HTTP_ENDPOINT": "https://logs.example.com",
            "GEOIP_DATABASE_S3_URI": " s3://a/City.mmdb , ,s3://a/ASN.mmdb",
        }
    )
    assert config.geo_databases == (S3Location("a", "City.mmdb"), S3Location("a", "ASN.mmdb"))
    assert Config.from_env({"HTTP_ENDPOINT": "https://logs.example.com"}).geo_databases == ()


def test_a_bad_uri_is_reported_with_the_others() -> None:
    with pytest.raises(ConfigError) as raised:
        Config.from_env({"GEOIP_DATABASE_S3_URI": "/tmp/GeoLite2-City.mmdb"})
    assert "HTTP_ENDPOINT is required" in str(raised.value)
    assert "GEOIP_DATABASE_S3_URI takes s3://bucket/key URIs of .mmdb files" in str(raised.value)
