"""Application Load Balancer access log lines -> typed records (the forwarder's hot path).

Field order follows the AWS documentation ("Access logs for your Application Load Balancer").
AWS appends fields over time, so one bucket holds lines of 25 to 34 known fields; older lines
(from before redirect_url/error_reason) are accepted too as long as the request is there.
"""

from __future__ import annotations

from typing import Any

from forwarder.parsers import FormatMismatchError, split_host_port, split_request, to_float, to_int

# Fields 14-34, in log order, following the request (field 13). Kept as a tuple for zip().
_TAIL_FIELDS = (
    "user_agent",
    "ssl_cipher",
    "ssl_protocol",
    "target_group_arn",
    "trace_id",
    "domain_name",
    "chosen_cert_arn",
    "matched_rule_priority",
    "request_creation_time",
    "actions_executed",
    "redirect_url",
    "error_reason",
    "target_port_list",
    "target_status_code_list",
    "classification",
    "classification_reason",
    "conn_trace_id",
    "transformed_host",
    "transformed_uri",
    "request_transform_status",
    "ip_address",
)
_KNOWN_AFTER_HEAD = 1 + len(_TAIL_FIELDS)  # request + fields 14-34
_HEAD_TOKENS = 12  # type .. sent_bytes, all bare
# Pieces of line.split('"') for each layout AWS writes, all quoted values quoted:
_PARTS_25_FIELDS = 17  # through error_reason
_PARTS_27_FIELDS = 21  # + target_port_list, target_status_code_list
_PARTS_30_FIELDS = 25  # + classification, classification_reason (29), conn_trace_id (30, bare)
_CURRENT_LAYOUT_PARTS = 31  # + transformed_host/uri, request_transform_status (33), ip_address (34)
# Status codes (and small rule priorities) by their text: a dict lookup is 4x faster than int().
_SMALL_INTS = {str(number): number for number in range(1000)}
_FAST_LAYOUTS = frozenset((_PARTS_25_FIELDS, _PARTS_27_FIELDS, _PARTS_30_FIELDS, _CURRENT_LAYOUT_PARTS))


def parse_alb_access(line: str) -> dict[str, Any]:
    """Parse one ALB access log line; raise ParseError when it is not one.

    Lines of every layout AWS writes (25, 27, 29, 30, 33 and 34 fields, all values quoted where
    AWS quotes them) take a fast path: one split on '"', the pieces unpacked straight into
    locals, one dict literal. Anything else (bare target lists, new quoted fields, odd spacing, a
    `-` where a number usually is, broken lines) goes through the general tokenizer, which
    produces the same record or a precise ParseError.

    The current layout (33/34 fields, most lines written today) is handled inline here; the
    earlier ones in _parse_earlier_layout, whose first half is the same code.
    """
    parts = line.split('"')
    count = len(parts)
    if count != _CURRENT_LAYOUT_PARTS:
        if count in _FAST_LAYOUTS:
            return _parse_earlier_layout(parts, count)
        return _parse_general(parts)
    (
        head,
        request,
        s2,
        user_agent,
        mid,
        trace_id,
        s6,
        domain_name,
        s8,
        chosen_cert_arn,
        rule,
        actions,
        s12,
        redirect_url,
        s14,
        error_reason,
        s16,
        target_list,
        s18,
        code_list,
        s20,
        classification,
        s22,
        classification_reason,
        conn,
        transformed_host,
        s26,
        transformed_uri,
        s28,
        transform_status,
        trailing,
    ) = parts
    if not (s2 == s6 == s8 == s12 == s14 == s16 == s18 == s20 == s22 == s26 == s28 == " "):
        return _parse_general(parts)
    try:
        # split(" ") is faster than split(); the unpacking then also checks the single spaces
        # (the empty strings are what lies before the first and after the last separator).
        kind, time, elb, client, target, rpt, tpt, rspt, elb_code, target_code, received, sent, end = (
            head.split(" ")
        )
        lead_m, ssl_cipher, ssl_protocol, target_group_arn, end_m = mid.split(" ")
        lead_r, priority, created, end_r = rule.split(" ")
        lead_c, conn_trace_id, end_c = conn.split(" ")
    except ValueError:
        return _parse_general(parts)
    if end or lead_m or end_m or lead_r or end_r or lead_c or end_c:
        return _parse_general(parts)
    at = client.rfind(":")
    if at <= 0 or client[0] == "[":  # a bracketed IPv6 address: split_host_port removes the brackets
        return _parse_general(parts)
    if target == "-":
        target_ip = target_port = None
    else:
        target_at = target.rfind(":")
        if target_at <= 0 or target[0] == "[":
            return _parse_general(parts)
        target_ip = target[:target_at]
        target_port = target[target_at + 1 :]
    first = request.find(" ")
    final = request.rfind(" ")
    method: str | None = request[:first]
    url: str | None = request[first + 1 : final]
    version: str | None = request[final + 1 :]
    if first <= 0 or first == final or method == "-" or not version or not url or url[0] == "-":
        method, url, version = split_request(request)
    try:
        record: dict[str, Any] = {
            "type": kind,
            "time": time,
            "elb": elb,
            "client_ip": client[:at],
            "client_port": int(client[at + 1 :]),
            "target_ip": target_ip,
            "target_port": None if target_port is None else int(target_port),
            "request_processing_time": float(rpt),
            "target_processing_time": float(tpt),
            "response_processing_time": float(rspt),
            "elb_status_code": _SMALL_INTS[elb_code],
            "target_status_code": None if target_code == "-" else _SMALL_INTS[target_code],
            "received_bytes": int(received),
            "sent_bytes": int(sent),
            "request": request,
            "http_method": method,
            "request_url": url,
            "http_version": version,
            "user_agent": None if user_agent == "-" else user_agent,
            "ssl_cipher": None if ssl_cipher == "-" else ssl_cipher,
            "ssl_protocol": None if ssl_protocol == "-" else ssl_protocol,
            "target_group_arn": None if target_group_arn == "-" else target_group_arn,
            "trace_id": None if trace_id == "-" else trace_id,
            "domain_name": None if domain_name == "-" else domain_name,
            "chosen_cert_arn": None if chosen_cert_arn == "-" else chosen_cert_arn,
            "matched_rule_priority": None if priority == "-" else _SMALL_INTS.get(priority) or int(priority),
            "request_creation_time": None if created == "-" else created,
            "actions_executed": None if actions == "-" else actions.split(","),
            "redirect_url": None if redirect_url == "-" else redirect_url,
            "error_reason": None if error_reason == "-" else error_reason,
            "target_port_list": None if target_list == "-" else target_list.split(),
            "target_status_code_list": (
                None
                if code_list == "-"
                else [_SMALL_INTS[code_list]]  # one target: the usual case, no comprehension needed
                if " " not in code_list
                else [int(c) for c in code_list.split()]
            ),
            "classification": None if classification == "-" else classification,
            "classification_reason": None if classification_reason == "-" else classification_reason,
            "conn_trace_id": None if conn_trace_id == "-" else conn_trace_id,
            "transformed_host": None if transformed_host == "-" else transformed_host,
            "transformed_uri": None if transformed_uri == "-" else transformed_uri,
            "request_transform_status": None if transform_status == "-" else transform_status,
        }
    except (ValueError, KeyError):  # KeyError: a status code outside 0-999
        return _parse_general(parts)
    if trailing:
        tokens = trailing.split()
        if tokens:
            ip_address = tokens[0]
            record["ip_address"] = None if ip_address == "-" else ip_address
            if len(tokens) > 1:
                record["extra_fields"] = tokens[1:]
    return record


def _parse_earlier_layout(parts: list[str], count: int) -> dict[str, Any]:
    """The 25-, 27- and 29/30-field layouts: same pieces as the current one, fewer of them."""
    (
        head,
        request,
        s2,
        user_agent,
        mid,
        trace_id,
        s6,
        domain_name,
        s8,
        chosen_cert_arn,
        rule,
        actions,
        s12,
        redirect_url,
        s14,
        error_reason,
        *tail,
    ) = parts
    if not (s2 == s6 == s8 == s12 == s14 == " "):
        return _parse_general(parts)
    try:
        # split(" ") is faster than split(); the unpacking then also checks the single spaces
        # (the empty strings are what lies before the first and after the last separator).
        kind, time, elb, client, target, rpt, tpt, rspt, elb_code, target_code, received, sent, end = (
            head.split(" ")
        )
        lead_m, ssl_cipher, ssl_protocol, target_group_arn, end_m = mid.split(" ")
        lead_r, priority, created, end_r = rule.split(" ")
    except ValueError:
        return _parse_general(parts)
    if end or lead_m or end_m or lead_r or end_r:
        return _parse_general(parts)
    at = client.rfind(":")
    if at <= 0 or client[0] == "[":  # a bracketed IPv6 address: split_host_port removes the brackets
        return _parse_general(parts)
    if target == "-":
        target_ip = target_port = None
    else:
        target_at = target.rfind(":")
        if target_at <= 0 or target[0] == "[":
            return _parse_general(parts)
        target_ip = target[:target_at]
        target_port = target[target_at + 1 :]
    first = request.find(" ")
    final = request.rfind(" ")
    method: str | None = request[:first]
    url: str | None = request[first + 1 : final]
    version: str | None = request[final + 1 :]
    if first <= 0 or first == final or method == "-" or not version or not url or url[0] == "-":
        method, url, version = split_request(request)
    try:
        record: dict[str, Any] = {
            "type": kind,
            "time": time,
            "elb": elb,
            "client_ip": client[:at],
            "client_port": int(client[at + 1 :]),
            "target_ip": target_ip,
            "target_port": None if target_port is None else int(target_port),
            "request_processing_time": float(rpt),
            "target_processing_time": float(tpt),
            "response_processing_time": float(rspt),
            "elb_status_code": _SMALL_INTS[elb_code],
            "target_status_code": None if target_code == "-" else _SMALL_INTS[target_code],
            "received_bytes": int(received),
            "sent_bytes": int(sent),
            "request": request,
            "http_method": method,
            "request_url": url,
            "http_version": version,
            "user_agent": None if user_agent == "-" else user_agent,
            "ssl_cipher": None if ssl_cipher == "-" else ssl_cipher,
            "ssl_protocol": None if ssl_protocol == "-" else ssl_protocol,
            "target_group_arn": None if target_group_arn == "-" else target_group_arn,
            "trace_id": None if trace_id == "-" else trace_id,
            "domain_name": None if domain_name == "-" else domain_name,
            "chosen_cert_arn": None if chosen_cert_arn == "-" else chosen_cert_arn,
            "matched_rule_priority": None if priority == "-" else _SMALL_INTS.get(priority) or int(priority),
            "request_creation_time": None if created == "-" else created,
            "actions_executed": None if actions == "-" else actions.split(","),
            "redirect_url": None if redirect_url == "-" else redirect_url,
            "error_reason": None if error_reason == "-" else error_reason,
        }
        if count == _PARTS_25_FIELDS:
            (trailing,) = tail
        else:
            # Target lists (27 fields), then the desync classification (29) and the bare
            # conn_trace_id (30), each quoted value after a single space.
            s16, target_list, s18, code_list, *tail = tail
            if not s16 == s18 == " ":
                return _parse_general(parts)
            record["target_port_list"] = None if target_list == "-" else target_list.split()
            record["target_status_code_list"] = (
                None
                if code_list == "-"
                else [_SMALL_INTS[code_list]]  # one target: the usual case, no comprehension needed
                if " " not in code_list
                else [int(c) for c in code_list.split()]
            )
            if count == _PARTS_27_FIELDS:
                (trailing,) = tail
            else:
                s20, classification, s22, reason, trailing = tail
                if not s20 == s22 == " ":
                    return _parse_general(parts)
                record["classification"] = None if classification == "-" else classification
                record["classification_reason"] = None if reason == "-" else reason
    except (ValueError, KeyError):  # KeyError: a status code outside 0-999
        return _parse_general(parts)
    if trailing:
        tokens = trailing.split()
        if tokens:
            if count != _PARTS_30_FIELDS or len(tokens) > 1:
                # Bare values where AWS quotes them (e.g. target lists printed unquoted): only
                # the general tokenizer names those by position.
                return _parse_general(parts)
            conn_trace_id = tokens[0]
            record["conn_trace_id"] = None if conn_trace_id == "-" else conn_trace_id
    return record


def _parse_general(parts: list[str]) -> dict[str, Any]:
    """Any layout: tokenize quote-aware, then name fields by position."""
    count = len(parts)
    if not count & 1:
        raise FormatMismatchError("unbalanced double quotes")
    head = parts[0].split()
    if len(head) != _HEAD_TOKENS or count < 3:
        raise FormatMismatchError(f"expected 12 fields before the quoted request, found {len(head)}")

    # Everything after the 12 bare head fields: quoted values whole, bare segments split on spaces.
    rest: list[str] = []
    for i in range(1, count, 2):
        rest.append(parts[i])
        bare = parts[i + 1]
        if bare != " ":
            rest += bare.split()

    record = _head_fields(head)
    target = head[4]
    if target != "-":
        record["target_ip"], record["target_port"] = split_host_port(target, "target")

    request = rest[0]
    if request == "-":
        record["request"] = record["http_method"] = record["request_url"] = record["http_version"] = None
    else:
        record["request"] = request
        record["http_method"], record["request_url"], record["http_version"] = split_request(request)

    values = [None if v == "-" else v for v in rest]
    record.update(zip(_TAIL_FIELDS, values[1:], strict=False))

    known = len(values)
    if known > 8:
        priority = values[8]
        if priority is not None:
            record["matched_rule_priority"] = to_int(priority, "matched_rule_priority")
    if known > 10:
        actions = values[10]
        if actions is not None:
            record["actions_executed"] = actions.split(",")
    if known > 13:
        targets = values[13]
        if targets is not None:
            record["target_port_list"] = targets.split()
    if known > 14:
        codes = values[14]
        if codes is not None:
            record["target_status_code_list"] = [
                int(c) if c.isdigit() else (None if c == "-" else c) for c in codes.split()
            ]
    if known > _KNOWN_AFTER_HEAD:
        record["extra_fields"] = rest[_KNOWN_AFTER_HEAD:]
    return record


def _head_fields(head: list[str]) -> dict[str, Any]:
    """The 12 bare head fields, typed; a `-` becomes None, garbage a ParseError naming the field."""
    client = head[3]
    at = client.rfind(":")
    target_code = head[9]
    try:
        if at <= 0 or client[0] == "[":
            raise ValueError(client)
        return {
            "type": head[0],
            "time": head[1],
            "elb": head[2],
            "client_ip": client[:at],
            "client_port": int(client[at + 1 :]),
            "target_ip": None,
            "target_port": None,
            "request_processing_time": float(head[5]),
            "target_processing_time": float(head[6]),
            "response_processing_time": float(head[7]),
            "elb_status_code": int(head[8]),
            "target_status_code": None if target_code == "-" else int(target_code),
            "received_bytes": int(head[10]),
            "sent_bytes": int(head[11]),
        }
    except ValueError:
        pass
    client_ip, client_port = split_host_port(client, "client")
    return {
        "type": head[0],
        "time": head[1],
        "elb": head[2],
        "client_ip": client_ip,
        "client_port": client_port,
        "target_ip": None,
        "target_port": None,
        "request_processing_time": to_float(head[5], "request_processing_time"),
        "target_processing_time": to_float(head[6], "target_processing_time"),
        "response_processing_time": to_float(head[7], "response_processing_time"),
        "elb_status_code": to_int(head[8], "elb_status_code"),
        "target_status_code": to_int(target_code, "target_status_code"),
        "received_bytes": to_int(head[10], "received_bytes"),
        "sent_bytes": to_int(head[11], "sent_bytes"),
    }
