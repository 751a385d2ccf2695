"""Network Load Balancer access log lines (TLS listeners only) -> typed records.

Fields, in order (AWS docs, "Access logs for your Network Load Balancer"): type (`tls`), version,
time (no fraction, no `Z`), elb, listener, client:port, destination:port, connection_time and
tls_handshake_time (milliseconds), received_bytes, sent_bytes, incoming_tls_alert, chosen_cert_arn,
chosen_cert_serial, tls_cipher, tls_protocol_version, tls_named_group, domain_name (URL-encoded),
alpn_fe_protocol, alpn_be_protocol, alpn_client_preference_list (`"h2","http/1.1"`: quoted items
joined by commas, no spaces), tls_connection_creation_time. No field contains a space, so the line
splits on spaces.
"""

from __future__ import annotations

from typing import Any

from forwarder.parsers import FormatMismatchError, ParseError, dash_to_none, split_host_port, to_int

_FIELDS = (
    "type",
    "version",
    "time",  # the 2019 docs call it timestamp
    "elb",
    "listener",
    "client",  # split into client_ip, client_port
    "destination",  # split into destination_ip, destination_port (the 2019 docs: listener:port)
    "connection_time",
    "tls_handshake_time",
    "received_bytes",
    "sent_bytes",
    "incoming_tls_alert",
    "chosen_cert_arn",
    "chosen_cert_serial",
    "tls_cipher",
    "tls_protocol_version",
    "tls_named_group",
    "domain_name",  # the last field of version 1.0
    "alpn_fe_protocol",
    "alpn_be_protocol",
    "alpn_client_preference_list",  # the last field version 2.0 always has
    "tls_connection_creation_time",  # appended to version 2.0 lines in 2024
)
# Fields every line of a log-entry version has. Version 1.0 (the docs of 2019) ended at domain_name;
# version 2.0 (2020) appended the three ALPN fields. AWS appends new fields at the end of a version,
# so a line may have more than this; a version we do not know is held to the newest known one.
_VERSION_FIELDS = {
    "1.0": _FIELDS.index("domain_name") + 1,
    "2.0": _FIELDS.index("alpn_client_preference_list") + 1,
}
_NEWEST_VERSION_FIELDS = max(_VERSION_FIELDS.values())
_PREFERENCES = _FIELDS.index("alpn_client_preference_list")


def parse_nlb_access(line: str) -> dict[str, Any]:
    """Parse one NLB access log line of any version; raise ParseError when it is not one."""
    tokens = line.split()
    if not tokens or tokens[0] != "tls":
        raise FormatMismatchError(f"type is not tls: {tokens[0][:20] if tokens else ''!r}")
    version = tokens[1] if len(tokens) > 1 else ""
    required = _VERSION_FIELDS.get(version, _NEWEST_VERSION_FIELDS)
    if len(tokens) < required:
        raise FormatMismatchError(
            f"expected at least {required} fields in a version {version[:10]} line, found {len(tokens)}"
        )
    values = dash_to_none(tokens)
    record: dict[str, Any] = dict(zip(_FIELDS[:5], values, strict=False))
    record["client_ip"], record["client_port"] = split_host_port(tokens[5], "client")
    record["destination_ip"], record["destination_port"] = split_host_port(tokens[6], "destination")
    record["connection_time"] = _number(tokens[7], "connection_time")
    record["tls_handshake_time"] = _number(tokens[8], "tls_handshake_time")
    record["received_bytes"] = to_int(tokens[9], "received_bytes")
    record["sent_bytes"] = to_int(tokens[10], "sent_bytes")
    alert = tokens[11]
    record["incoming_tls_alert"] = int(alert) if alert.isdigit() else values[11]
    record.update(zip(_FIELDS[12:], values[12:], strict=False))
    if len(values) > _PREFERENCES:
        preferences = values[_PREFERENCES]
        if preferences is not None:
            record["alpn_client_preference_list"] = [p.strip('"') for p in preferences.split(",")]
    if len(tokens) > len(_FIELDS):
        record["extra_fields"] = tokens[len(_FIELDS) :]
    return record


def _number(value: str, what: str) -> int | float | None:
    """Milliseconds: an int when logged as one (the usual case), a float otherwise, `-` -> None."""
    if value == "-":
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        raise ParseError(f"{what} is not a number: {value[:40]!r}") from None
