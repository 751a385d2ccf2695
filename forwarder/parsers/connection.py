"""ALB connection log lines (files `conn_log_...`) -> typed records.

Fields, in order (AWS docs, "Connection logs for your Application Load Balancer"): time
(documented as `timestamp`), client_ip, client_port, listener_port, tls_protocol, tls_cipher,
tls_handshake_latency (seconds), "leaf_client_cert_subject" (quoted), leaf_client_cert_validity,
leaf_client_cert_serial_number, tls_verify_status (`Success` or `Failed:<code>`), conn_trace_id,
tls_keyexchange, elb, ip_address. The client address and port are separate fields here.
"""

from __future__ import annotations

from typing import Any

from forwarder.parsers import FormatMismatchError, dash_to_none, to_float, to_int, tokenize

_FIELDS = (
    "time",
    "client_ip",
    "client_port",
    "listener_port",
    "tls_protocol",
    "tls_cipher",
    "tls_handshake_latency",
    "leaf_client_cert_subject",
    "leaf_client_cert_validity",
    "leaf_client_cert_serial_number",
    "tls_verify_status",
    "conn_trace_id",
    "tls_keyexchange",
    "elb",
    "ip_address",
)
# The first published layout ended at tls_verify_status; conn_trace_id and later were appended.
_MIN_FIELDS = 11


def parse_alb_connection(line: str) -> dict[str, Any]:
    """Parse one ALB connection log line; raise ParseError when it is not one."""
    tokens = tokenize(line)
    if len(tokens) < _MIN_FIELDS:
        raise FormatMismatchError(f"expected at least {_MIN_FIELDS} fields, found {len(tokens)}")
    record: dict[str, Any] = dict(zip(_FIELDS, dash_to_none(tokens), strict=False))
    record["client_port"] = to_int(tokens[2], "client_port")
    record["listener_port"] = to_int(tokens[3], "listener_port")
    record["tls_handshake_latency"] = to_float(tokens[6], "tls_handshake_latency")
    if len(tokens) > len(_FIELDS):
        record["extra_fields"] = tokens[len(_FIELDS) :]
    return record
