"""Network Load Balancer access log lines (TLS listeners only) -> typed records.

Fields, in order (AWS docs, "Access logs for your Network Load Balancer"): type (`tls`), version
(`2.0`), time (no fraction, no `Z`), elb, listener, client:port, destination:port,
connection_time and tls_handshake_time (milliseconds), received_bytes, sent_bytes,
incoming_tls_alert, chosen_cert_arn, chosen_cert_serial, tls_cipher, tls_protocol_version,
tls_named_group, domain_name (URL-encoded), alpn_fe_protocol, alpn_be_protocol,
alpn_client_preference_list (`"h2","http/1.1"`: quoted items joined by commas, no spaces), and
since 2024 tls_connection_creation_time. No field contains a space, so the line splits on spaces.
"""

from __future__ import annotations

from typing import Any

from forwarder.parsers import ParseError, dash_to_none, split_host_port, to_int

_FIELDS = (
    "type",
    "version",
    "time",
    "elb",
    "listener",
    "client",  # split into client_ip, client_port
    "destination",  # split into destination_ip, destination_port
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
    "domain_name",
    "alpn_fe_protocol",
    "alpn_be_protocol",
    "alpn_client_preference_list",
    "tls_connection_creation_time",
)
_MIN_FIELDS = 21


def parse_nlb_access(line: str) -> dict[str, Any]:
    """Parse one NLB access log line; raise ParseError when it is not one."""
    tokens = line.split()
    if len(tokens) < _MIN_FIELDS:
        raise ParseError(f"expected at least {_MIN_FIELDS} fields, found {len(tokens)}")
    if tokens[0] != "tls":
        raise ParseError(f"type is not tls: {tokens[0][:20]!r}")
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
    preferences = values[20]
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
