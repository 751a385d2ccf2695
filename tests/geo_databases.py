"""Small MaxMind DB files written by the tests with mmdb-writer, shaped like GeoLite2-City and -ASN."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet

# Public addresses (outside every special-purpose range) the databases know.
LONDON_V4 = "81.2.69.160"
BERLIN_V6 = "2a02:8010:1::7"
UNKNOWN_V4 = "8.8.4.4"  # public, in neither database

CITY: dict[str, dict[str, Any]] = {
    "81.2.69.0/24": {
        "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
        "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
        "city": {"names": {"en": "London"}},
        "location": {"latitude": 51.5142, "longitude": -0.0931},
    },
    "2a02:8010::/32": {
        "country": {"iso_code": "DE", "names": {"en": "Germany"}},
        "city": {"names": {"en": "Berlin"}},
        "location": {"latitude": 52.52, "longitude": 13.405},
    },
}
ASN: dict[str, dict[str, Any]] = {
    "81.2.64.0/19": {"autonomous_system_number": 20712, "autonomous_system_organization": "Andrews & Arnold"},
    "2a02:8010::/32": {"autonomous_system_number": 64500, "autonomous_system_organization": "Example Net"},
}
CITY_GEO = {
    LONDON_V4: {
        "country_code": "GB",
        "region_code": "ENG",
        "region": "England",
        "city": "London",
        "location": {"lat": 51.5142, "lon": -0.0931},
    },
    BERLIN_V6: {"country_code": "DE", "city": "Berlin", "location": {"lat": 52.52, "lon": 13.405}},
}
ASN_GEO = {
    LONDON_V4: {"asn": 20712, "as_org": "Andrews & Arnold"},
    BERLIN_V6: {"asn": 64500, "as_org": "Example Net"},
}


def write_mmdb(path: Path, networks: dict[str, dict[str, Any]], database_type: str) -> bytes:
    """An IPv6 database holding IPv4 networks too (as GeoLite2's do); returns its bytes."""
    writer = MMDBWriter(
        ip_version=6, ipv4_compatible=True, database_type=database_type, languages=["en"], description="test"
    )
    for network, data in networks.items():
        writer.insert_network(IPSet([network]), data)
    writer.to_db_file(str(path))
    return path.read_bytes()


def city_database(directory: Path) -> bytes:
    return write_mmdb(directory / "city.mmdb", CITY, "GeoLite2-City")


def asn_database(directory: Path) -> bytes:
    return write_mmdb(directory / "asn.mmdb", ASN, "GeoLite2-ASN")
