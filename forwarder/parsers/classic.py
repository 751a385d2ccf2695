"""Classic Load Balancer access log lines -> typed records.

Fields, in order (AWS docs, "Access logs for your Classic Load Balancer"): time (documented as
`timestamp`), elb (the load balancer name), client:port, backend:port, request_processing_time,
backend_processing_time, response_processing_time, elb_status_code, backend_status_code,
received_bytes, sent_bytes, "request", "user_agent", ssl_cipher, ssl_protocol. TCP and SSL
listeners log `-` status codes and the request `"- - - "`; lines written before 2015 end after
the request (no user agent or TLS fields).
"""

from __future__ import annotations

from typing import Any

from forwarder.parsers import FormatMismatchError, split_host_port, split_request, to_float, to_int, tokenize

_TAIL_FIELDS = ("user_agent", "ssl_cipher", "ssl_protocol")
_MIN_FIELDS = 12  # through the request
_KNOWN_FIELDS = _MIN_FIELDS + len(_TAIL_FIELDS)


def parse_classic_elb_access(line: str) -> dict[str, Any]:
    """Parse one Classic ELB access log line; raise ParseError when it is not one."""
    parts = line.split('"', 1)
    bare_head = parts[0].split()
    if len(bare_head) != _MIN_FIELDS - 1 or len(parts) < 2:
        raise FormatMismatchError(f"expected 11 fields before the quoted request, found {len(bare_head)}")
    tokens = tokenize(line)
    client_ip, client_port = split_host_port(tokens[2], "client")
    backend_ip, backend_port = split_host_port(tokens[3], "backend")
    request = tokens[11]
    method, url, version = split_request(request)
    record: dict[str, Any] = {
        "time": tokens[0],
        "elb": tokens[1],
        "client_ip": client_ip,
        "client_port": client_port,
        "backend_ip": backend_ip,
        "backend_port": backend_port,
        "request_processing_time": to_float(tokens[4], "request_processing_time"),
        "backend_processing_time": to_float(tokens[5], "backend_processing_time"),
        "response_processing_time": to_float(tokens[6], "response_processing_time"),
        "elb_status_code": to_int(tokens[7], "elb_status_code"),
        "backend_status_code": to_int(tokens[8], "backend_status_code"),
        "received_bytes": to_int(tokens[9], "received_bytes"),
        "sent_bytes": to_int(tokens[10], "sent_bytes"),
        "request": None if request == "-" else request,
        "http_method": method,
        "request_url": url,
        "http_version": version,
    }
    for name, value in zip(_TAIL_FIELDS, tokens[_MIN_FIELDS:], strict=False):
        record[name] = None if value == "-" else value
    if len(tokens) > _KNOWN_FIELDS:
        record["extra_fields"] = tokens[_KNOWN_FIELDS:]
    return record
