"""Geo enrichment: records with a public client address gain `client_geo` from MaxMind-format databases.

The databases (.mmdb: GeoLite2/GeoIP2 City or Country, DB-IP, and optionally a separate ASN database) are
the user's, in S3, listed in GEOIP_DATABASE_S3_URI (comma-separated). Each is downloaded once per
container to /tmp (Lambda's writable disk, kept between warm invocations) and opened with MaxMind's
`maxminddb` reader. Lookups are cached per address: one log file repeats the same clients many times.
Private, loopback, link-local, reserved and otherwise non-global addresses get no `client_geo` and are not
looked up; neither are addresses the databases do not know.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import maxminddb

logger = logging.getLogger(__name__)

__all__ = [
    "GEOIP_DATABASE_S3_URI",
    "GeoDatabaseError",
    "GeoEnricher",
    "S3Location",
    "client_address",
    "load_enricher",
    "open_local_enricher",
    "parse_s3_uri",
]

# Read by forwarder.config, listed there with the others.
GEOIP_DATABASE_S3_URI = "GEOIP_DATABASE_S3_URI"

# Distinct addresses remembered: about 730 bytes an entry with City fields, so about 25 MB when full.
CACHE_SIZE = 32768
# Lambda's only writable disk; it survives between invocations of one container.
DOWNLOAD_DIRECTORY = "/tmp"  # noqa: S108 -- Lambda's /tmp, private to the function's container
_READ_CHUNK = 1024 * 1024

# Where each format puts the client's address: ALB access and connection, NLB and Classic ELB logs
# `client_ip`; VPC flow logs `srcaddr`; API Gateway `source_ip` (CLF) or `ip` (the JSON format AWS
# documents, "ip": "$context.identity.sourceIp"); WAF `httpRequest.clientIp`.
_ADDRESS_FIELDS = ("client_ip", "srcaddr", "source_ip", "ip")


class GeoDatabaseError(RuntimeError):
    """A geo database cannot be read from S3 or is not a MaxMind DB; the message names its setting."""


class _ObjectReader(Protocol):
    def get_object(self, **kwargs: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class S3Location:
    """An object named by an s3://bucket/key URI."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_uri(value: str) -> S3Location | None:
    """s3://bucket/key -> its location, or None when the value is not of that shape."""
    rest = value.removeprefix("s3://")
    bucket, _, key = rest.partition("/")
    if rest == value or not bucket or not key or key.endswith("/"):
        return None
    return S3Location(bucket, key)


def client_address(record: dict[str, Any]) -> str | None:
    """The client address of a record, from the field its format carries it in, or None."""
    for name in _ADDRESS_FIELDS:
        value = record.get(name)
        if isinstance(value, str):
            return value
    request = record.get("httpRequest")
    if isinstance(request, dict):
        value = request.get("clientIp")
        if isinstance(value, str):
            return value
    return None


def _fields(found: dict[str, Any]) -> dict[str, Any]:
    """The client_geo fields one database's answer holds (City, Country, ASN and DB-IP layouts)."""
    geo: dict[str, Any] = {}
    country = found.get("country")
    if isinstance(country, dict) and country.get("iso_code"):
        geo["country_code"] = country["iso_code"]
    subdivisions = found.get("subdivisions")
    if isinstance(subdivisions, list) and subdivisions and isinstance(subdivisions[0], dict):
        region = subdivisions[0]
        if region.get("iso_code"):
            geo["region_code"] = region["iso_code"]
        if isinstance(region.get("names"), dict) and region["names"].get("en"):
            geo["region"] = region["names"]["en"]
    city = found.get("city")
    if isinstance(city, dict) and isinstance(city.get("names"), dict) and city["names"].get("en"):
        geo["city"] = city["names"]["en"]
    location = found.get("location")
    if isinstance(location, dict) and "latitude" in location and "longitude" in location:
        # {lat, lon}: the shape Elasticsearch and OpenSearch map as a geo_point.
        geo["location"] = {"lat": location["latitude"], "lon": location["longitude"]}
    if found.get("autonomous_system_number") is not None:
        geo["asn"] = found["autonomous_system_number"]
    if found.get("autonomous_system_organization"):
        geo["as_org"] = found["autonomous_system_organization"]
    return geo


class GeoEnricher:
    """Adds `client_geo` to records whose client address is public and known to one of the databases."""

    __slots__ = ("_readers", "lookup")

    def __init__(self, readers: tuple[maxminddb.Reader, ...], *, cache_size: int = CACHE_SIZE) -> None:
        self._readers = readers
        # Per instance, so a new container's databases never answer from an old one's cache.
        self.lookup: Callable[[str], dict[str, Any] | None] = lru_cache(maxsize=cache_size)(self._lookup)

    def _lookup(self, address: str) -> dict[str, Any] | None:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:a.b.c.d, as dual-stack listeners may write an IPv4 client
            address = str(ip)
        if not ip.is_global:
            return None  # private, loopback, link-local, CGNAT, documentation or reserved: no location
        geo: dict[str, Any] = {}
        for reader in self._readers:
            found = reader.get(address)  # the text: the C reader parses it faster than it converts an object
            if isinstance(found, dict):
                geo.update(_fields(found))
        return geo or None

    def enrich(self, records: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """The records, each with `client_geo` when its client address has one."""
        lookup = self.lookup
        for record in records:
            address = client_address(record)
            if address is not None:
                geo = lookup(address)
                if geo is not None:
                    record["client_geo"] = geo  # shared by the records of one address: encoders only read
            yield record

    def close(self) -> None:
        for reader in self._readers:
            reader.close()


def load_enricher(
    s3: _ObjectReader, locations: tuple[S3Location, ...], *, directory: str | None = None
) -> GeoEnricher | None:
    """Download and open each database; None when none is configured.

    Raises GeoDatabaseError naming the setting when an object cannot be read or is not a MaxMind DB."""
    if not locations:
        return None
    into = directory or DOWNLOAD_DIRECTORY
    return GeoEnricher(tuple(_open(s3, n, location, into) for n, location in enumerate(locations)))


def _open(s3: _ObjectReader, number: int, location: S3Location, directory: str) -> maxminddb.Reader:
    setting = GEOIP_DATABASE_S3_URI
    path = os.path.join(directory, f"geo-{number}.mmdb")
    partial = path + ".part"
    try:
        response = s3.get_object(Bucket=location.bucket, Key=location.key)
        with open(partial, "wb") as file:
            shutil.copyfileobj(response["Body"], file, _READ_CHUNK)
        # Renamed once complete: a container stopped mid-download leaves no half database under the name.
        os.replace(partial, path)
    except Exception as exc:  # any failure to fetch is the same configuration problem
        with contextlib.suppress(OSError):
            os.remove(partial)
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
        raise GeoDatabaseError(
            f"{setting}: cannot read {location.uri} ({code}); check the object exists and the forwarder's "
            "role may s3:GetObject it"
        ) from exc
    try:
        return _read_database(path, location.uri, setting)
    except GeoDatabaseError:
        os.remove(path)
        raise


def open_local_enricher(paths: tuple[str, ...]) -> GeoEnricher:
    """Open .mmdb files on this machine (the CLI's local option); an error names the file."""
    return GeoEnricher(tuple(_read_database(path, path) for path in paths))


def _read_database(path: str, origin: str, setting: str | None = None) -> maxminddb.Reader:
    import maxminddb  # noqa: PLC0415 -- only when a database is configured

    try:
        reader = maxminddb.open_database(path, maxminddb.MODE_AUTO)
    except (maxminddb.InvalidDatabaseError, ValueError, OSError) as exc:
        named = f"{setting}: {origin}" if setting else origin
        raise GeoDatabaseError(
            f"{named} is not a MaxMind DB (.mmdb) file ({exc}); give a GeoLite2, GeoIP2 or "
            "DB-IP database in MaxMind DB format"
        ) from exc
    metadata = reader.metadata()
    logger.info(
        "geo database loaded from %s: %s, built %d, IPv%d",
        origin,
        metadata.database_type,
        metadata.build_epoch,
        metadata.ip_version,
    )
    return reader
