"""The grok pattern library: the standard grok names, each defined here for Python's `re` (ASCII mode).

The names follow the common grok vocabulary, so patterns written for Logstash or other grok tools mostly
work as they are; the definitions are this project's own, written from what each name is meant to match
(the README lists where the matching differs in ways a user would notice). A definition may refer to
others as `%{NAME}` (expanded by `forwarder.parsers.grok`) and capture fields with `%{NAME:field}`; its
meaning says which fields a composite pattern captures.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PATTERNS", "LibraryPattern"]


@dataclass(frozen=True, slots=True)
class LibraryPattern:
    """One library pattern: its grok name, its definition and what it matches, with examples."""

    name: str
    regex: str
    meaning: str


# Pieces of the definitions below; not grok names themselves.
_HEX = "[0-9A-Fa-f]"
_DAY2 = r"(?:0[1-9]|[12]\d|3[01])"  # a day of the month in exactly two digits
_HOUR2 = r"(?:[01]\d|2[0-3])"  # an hour of the day in exactly two digits
_SECOND59 = r"[0-5]\d(?:[.,]\d+)?"  # seconds without the leap second, which datetime cannot hold
_MONTH_ABBR = "(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"  # 0-255 without leading zeros
_LABEL = "[0-9A-Za-z](?:[0-9A-Za-z-]{0,61}[0-9A-Za-z])?"  # one DNS label: letters, digits, inner hyphens
_EMAIL_ATOM = r"[\w!#$%&'*+/=?^`{|}~-]+"  # RFC 5322 atext


def _ipv6() -> str:
    """RFC 4291 section 2.2 text forms: eight groups, `::` for a run of zero groups, an IPv4 tail."""
    h16 = f"{_HEX}{{1,4}}"
    ls32 = rf"(?:{h16}:{h16}|{_OCTET}(?:\.{_OCTET}){{3}})"
    # The RFC 3986 (section 3.2.2) grammar, most groups after the `::` first, so the longest form wins.
    forms = [f"(?:{h16}:){{6}}{ls32}", f"::(?:{h16}:){{5}}{ls32}"]
    for before, after in ((0, 4), (1, 3), (2, 2), (3, 1), (4, 0)):
        head = f"(?:(?:{h16}:){{0,{before}}}{h16})?"
        forms.append(f"{head}::(?:{h16}:){{{after}}}{ls32}")
    forms.append(f"(?:(?:{h16}:){{0,5}}{h16})?::{h16}")
    forms.append(f"(?:(?:{h16}:){{0,6}}{h16})?::")
    # Not inside a longer run of hex digits and colons; a zone index (fe80::1%eth0, RFC 4007) may follow.
    return rf"(?<![\w:])(?:{'|'.join(forms)})(?![\w:])(?:%[\w.~-]+)?"


_p = LibraryPattern  # a short name for the table below


PATTERNS: tuple[LibraryPattern, ...] = (
    # --- Words, numbers and strings ---------------------------------------------------------------------
    _p("USERNAME", r"[\w.-]+", "a user name of letters, digits, '.', '_' and '-': frank, svc-backup, -"),
    _p("USER", "%{USERNAME}", "the same as USERNAME"),
    _p("EMAILLOCALPART", rf"{_EMAIL_ATOM}(?:\.{_EMAIL_ATOM})*", "the part of an e-mail address before the @"),
    _p("EMAILADDRESS", "%{EMAILLOCALPART}@%{HOSTNAME}", "an e-mail address: jane.doe+logs@example.com"),
    _p("INT", r"[+-]?\d+", "an integer, optionally signed: 42, -7, +3"),
    _p(
        "BASE10NUM",
        r"(?<![\d.+-])[+-]?(?:\d+(?:\.\d+)?|\.\d+)",
        "a decimal number, optionally signed, not begun inside another: 42, -0.5, .25 (no exponent)",
    ),
    _p("NUMBER", "%{BASE10NUM}", "the same as BASE10NUM"),
    _p("BASE16NUM", rf"(?<!{_HEX})[+-]?(?:0[xX])?{_HEX}+", "a hexadecimal integer, 0x optional: 0x1F, ff"),
    _p(
        "BASE16FLOAT",
        rf"(?<![\w.])[+-]?(?:0[xX])?(?:{_HEX}+(?:\.{_HEX}*)?|\.{_HEX}+)\b",
        "a hexadecimal number that may have a fraction: 0x1.8, ff.f",
    ),
    _p("POSINT", r"\b[1-9]\d*\b", "a positive integer without leading zeros: 1, 443"),
    _p("NONNEGINT", r"\b\d+\b", "zero or a positive integer: 0, 007, 443"),
    _p("WORD", r"\b\w+\b", "a run of letters, digits and underscores"),
    _p("NOTSPACE", r"\S+", "a run of anything but white space"),
    _p("SPACE", r"\s*", "white space, possibly none"),
    _p("DATA", ".*?", "any text, as little as lets the rest of the pattern match"),
    _p("GREEDYDATA", ".*", "any text, as much as lets the rest of the pattern match"),
    _p(
        "QUOTEDSTRING",
        r"""(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`)""",
        "a string in double, single or back quotes, quotes included; a backslash escapes the next character",
    ),
    _p("QS", "%{QUOTEDSTRING}", "the same as QUOTEDSTRING"),
    _p(
        "UUID",
        rf"{_HEX}{{8}}-(?:{_HEX}{{4}}-){{3}}{_HEX}{{12}}",
        "a UUID: 123e4567-e89b-12d3-a456-426614174000",
    ),
    _p(
        "URN",
        r"(?i:urn):[0-9A-Za-z][0-9A-Za-z-]{0,31}:(?:%[0-9A-Fa-f]{2}|[\w()+,.:=@;$!*'/?#-])+",
        "a URN (RFC 8141): urn:isbn:0451450523",
    ),
    # --- Network addresses ------------------------------------------------------------------------------
    _p("MAC", "%{CISCOMAC}|%{WINDOWSMAC}|%{COMMONMAC}", "a MAC address in any of the three notations below"),
    _p(
        "CISCOMAC",
        rf"(?:{_HEX}{{4}}\.){{2}}{_HEX}{{4}}",
        "a MAC address in dotted groups of four: 0123.4567.89ab",
    ),
    _p("WINDOWSMAC", rf"(?:{_HEX}{{2}}-){{5}}{_HEX}{{2}}", "a MAC address with hyphens: 01-23-45-67-89-AB"),
    _p("COMMONMAC", rf"(?:{_HEX}{{2}}:){{5}}{_HEX}{{2}}", "a MAC address with colons: 01:23:45:67:89:ab"),
    _p("IPV6", _ipv6(), "an IPv6 address: 2001:db8::1, ::1, ::ffff:192.0.2.1, fe80::1%eth0 (zone included)"),
    _p("IPV4", rf"(?<!\d)(?:{_OCTET}\.){{3}}{_OCTET}(?!\d)", "a dotted-quad IPv4 address: 192.0.2.10"),
    _p("IP", "%{IPV6}|%{IPV4}", "an IPv6 or IPv4 address"),
    _p(
        "HOSTNAME",
        rf"(?<![\w-]){_LABEL}(?:\.{_LABEL})*(?![\w-])",
        "a DNS name of letters, digits and hyphens: db-1.internal.example.com (a final dot is left out)",
    ),
    _p("IPORHOST", "%{IP}|%{HOSTNAME}", "an IP address or a host name"),
    _p(
        "HOSTPORT",
        r"(?:\[%{IPV6}\]|%{IPORHOST}):%{POSINT}",
        "a host and a port: example.com:8080, 192.0.2.1:443, [2001:db8::1]:443",
    ),
    # --- Paths and URIs ---------------------------------------------------------------------------------
    _p("PATH", "%{UNIXPATH}|%{WINPATH}", "a Unix or Windows path"),
    _p(
        "UNIXPATH",
        r"(?:/[\w.,:;@%!$&+=~-]*)+",
        "an absolute Unix path without spaces or quotes: /var/log/app.log",
    ),
    _p(
        "TTY",
        r"/dev/(?:pts/\d+|tty[A-Za-z]*\d+|console)",
        "a terminal device: /dev/pts/0, /dev/tty1, /dev/ttyS0",
    ),
    _p(
        "WINPATH",
        r"(?:[A-Za-z]:|\\\\[\w.$-]+)(?:\\[^\\/:*?\"<>|\s]*)+",
        r"a Windows path from a drive or a UNC share, no spaces: C:\Windows\system32, \\server\share\a.txt",
    ),
    _p("URIPROTO", r"[A-Za-z][A-Za-z0-9+.-]*", "a URI scheme: https, s3, svn+ssh"),
    _p(
        "URIHOST",
        r"(?:\[%{IPV6}\]|%{IPORHOST})(?::%{POSINT:port})?",
        "the host of a URI with an optional port, which is captured as port: example.com:8443",
    ),
    _p(
        "URIPATH",
        r"(?:/[\w.~!$&'()*+,;=:@%-]*)+",
        "the path of a URI (RFC 3986 characters): /a/b%20c/index.html",
    ),
    _p("URIPARAM", r"\?[^\s\"#]*", "the query of a URI, with its ?: ?q=grok&page=2"),
    _p(
        "URIPATHPARAM",
        r"%{URIPATH}(?:%{URIPARAM})?(?:#[^\s\"]*)?",
        "a URI path with an optional query and fragment: /search?q=grok#top",
    ),
    _p(
        "URI",
        r"%{URIPROTO}://(?:%{USER}(?::[^@\s/]*)?@)?%{URIHOST}(?:%{URIPATHPARAM})?",
        "an absolute URI: https://user@example.com:8443/a/b?x=1",
    ),
    # --- Dates and times --------------------------------------------------------------------------------
    _p(
        "MONTH",
        r"\b(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
        r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b",
        "an English month name or its abbreviation, any case: Jan, March, sept",
    ),
    _p("MONTHNUM", r"(?:0?[1-9]|1[0-2])", "a month number, one or two digits: 3, 03, 12"),
    _p("MONTHNUM2", r"(?:0[1-9]|1[0-2])", "a month number in two digits: 03, 12"),
    _p("MONTHDAY", rf"(?:{_DAY2}|[1-9])", "a day of the month, one or two digits: 5, 05, 31"),
    _p(
        "DAY",
        r"\b(?i:mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|fri(?:day)?"
        r"|sat(?:urday)?|sun(?:day)?)\b",
        "an English weekday name or its abbreviation, any case: Mon, Tuesday",
    ),
    _p("YEAR", r"\d\d(?:\d\d)?", "a year in four or two digits: 2025, 25"),
    _p("HOUR", r"(?:2[0-3]|[01]?\d)", "an hour of the day, one or two digits: 7, 09, 23"),
    _p("MINUTE", r"[0-5]\d", "a minute in two digits: 05, 59"),
    _p(
        "SECOND",
        r"(?:[0-5]\d|60)(?:[.,]\d+)?",
        "seconds in two digits (60 for a leap second), a fraction optional",
    ),
    _p(
        "TIME",
        r"(?<!\d)%{HOUR}:%{MINUTE}:%{SECOND}(?!\d)",
        "a time of day with seconds: 09:30:02, 9:30:02.412",
    ),
    _p("DATE_US", "%{MONTHNUM}[/-]%{MONTHDAY}[/-]%{YEAR}", "a month-first date: 03/14/2025, 3-14-25"),
    _p("DATE_EU", "%{MONTHDAY}[./-]%{MONTHNUM}[./-]%{YEAR}", "a day-first date: 14.03.2025, 14/3/25"),
    _p(
        "ISO8601_TIMEZONE",
        rf"(?:Z|[+-]{_HOUR2}(?::?[0-5]\d)?)",
        "an ISO 8601 offset: Z, +01:00, -0530, +01",
    ),
    _p("ISO8601_SECOND", "%{SECOND}", "the same as SECOND"),
    _p(
        "TIMESTAMP_ISO8601",
        rf"\d{{4}}-%{{MONTHNUM2}}-{_DAY2}[T ]{_HOUR2}:%{{MINUTE}}(?::{_SECOND59})?%{{ISO8601_TIMEZONE}}?",
        "an ISO 8601 / RFC 3339 date and time, T or a space between, fraction with . or , and the offset "
        "optional: 2025-03-14T09:30:02.412Z, 2025-03-14 09:30:02,412+01:00",
    ),
    _p(
        "TIMESTAMP_CN",
        r"\d{4}(?:[-/]%{MONTHNUM2}[-/]|年%{MONTHNUM}月)%{MONTHDAY}日? ?%{TIME}",
        "a year-first date and time as logged in China: 2025-03-14 09:30:02, 2025年3月14日 09:30:02",
    ),
    _p("DATE", "%{DATE_US}|%{DATE_EU}", "a month-first or day-first date"),
    _p("DATESTAMP", "%{DATE}[- ]%{TIME}", "a date and a time: 03/14/2025 09:30:02"),
    _p(
        "TZ",
        r"\b(?:UTC|GMT|[A-Z]{2,4}T)\b",
        "a time zone abbreviation: UTC, GMT, or capitals ending in T (PST, CET, CEST, AEDT)",
    ),
    _p(
        "DATESTAMP_RFC822",
        "%{DAY} %{MONTH} %{MONTHDAY} %{YEAR} %{TIME} %{TZ}",
        "weekday, month, day, year, time and zone: Fri Mar 14 2025 09:30:02 UTC",
    ),
    _p(
        "DATESTAMP_RFC2822",
        "%{DAY}, %{MONTHDAY} %{MONTH} %{YEAR} %{TIME} (?:%{ISO8601_TIMEZONE}|%{TZ})",
        "an e-mail (RFC 2822) date: Fri, 14 Mar 2025 09:30:02 +0000",
    ),
    _p(
        "DATESTAMP_OTHER",
        "%{DAY} %{MONTH} +%{MONTHDAY} %{TIME} %{TZ} %{YEAR}",
        "the date(1) form: Fri Mar 14 09:30:02 UTC 2025",
    ),
    _p(
        "DATESTAMP_EVENTLOG",
        rf"\d{{4}}%{{MONTHNUM2}}{_DAY2}{_HOUR2}%{{MINUTE}}[0-5]\d",
        "fourteen digits, year to second, as Windows event logs write them: 20250314093002",
    ),
    _p(
        "HTTPDATE",
        rf"%{{MONTHDAY}}/{_MONTH_ABBR}/\d{{4}}:%{{TIME}} [+-]\d{{4}}",
        "the web server access log time: 10/Oct/2000:13:55:36 -0700",
    ),
    # --- Syslog -----------------------------------------------------------------------------------------
    _p("SYSLOGTIMESTAMP", "%{MONTH} +%{MONTHDAY} %{TIME}", "the BSD syslog (RFC 3164) time: Mar  5 07:08:09"),
    _p("PROG", r"[^\s:\[\]]+", "a syslog program name (tag): sshd, postfix/smtpd, systemd-logind"),
    _p(
        "SYSLOGPROG",
        r"%{PROG:program}(?:\[%{POSINT:pid}\])?",
        "a program and optional [pid]: captures program, pid",
    ),
    _p("SYSLOGHOST", "%{IPORHOST}", "the host of a syslog line"),
    _p(
        "SYSLOGFACILITY",
        r"<%{NONNEGINT:facility}\.%{NONNEGINT:priority}>",
        "a facility and priority in angle brackets: <4.6>; captures facility, priority",
    ),
    _p(
        "SYSLOGBASE",
        "%{SYSLOGTIMESTAMP:timestamp} (?:%{SYSLOGFACILITY} )?%{SYSLOGHOST:logsource} %{SYSLOGPROG}:",
        "the start of a BSD syslog line up to the message: Mar  5 07:08:09 web-1 sshd[812]: ; captures "
        "timestamp, facility, priority, logsource, program, pid",
    ),
    _p(
        "LOGLEVEL",
        r"\b(?i:trace[1-8]?|debug|info(?:rmation(?:al)?)?|notice|warn(?:ing)?|err(?:or)?|crit(?:ical)?"
        r"|fatal|severe|alert|emerg(?:ency)?|panic)\b",
        "a log level name, any case: DEBUG, info, Warning, ERR, crit, FATAL, emerg, trace3",
    ),
    # --- Apache httpd (and servers writing its formats, such as nginx) ----------------------------------
    _p(
        "HTTPDUSER",
        "%{EMAILADDRESS}|%{USER}",
        "the user of an access log line: an e-mail address or a user name",
    ),
    _p(
        "HTTPDERROR_DATE",
        "%{DAY} %{MONTH} %{MONTHDAY} %{TIME} %{YEAR}",
        "the error log time: Wed Oct 11 14:32:52 2000",
    ),
    _p(
        "HTTPD_COMMONLOG",
        r"%{IPORHOST:clientip} %{HTTPDUSER:ident} %{HTTPDUSER:auth} \[%{HTTPDATE:timestamp}\] "
        r'"(?:%{WORD:verb} %{NOTSPACE:request}(?: HTTP/%{NUMBER:httpversion})?|%{DATA:rawrequest})" '
        r"(?:%{NUMBER:response}|-) (?:%{NUMBER:bytes}|-)",
        "a Common Log Format line; captures clientip, ident, auth, timestamp, verb, request, httpversion "
        "(or rawrequest when the request is not METHOD TARGET [HTTP/VERSION]), response, bytes",
    ),
    _p(
        "HTTPD_COMBINEDLOG",
        "%{HTTPD_COMMONLOG} %{QS:referrer} %{QS:agent}",
        "a Combined Log Format line: HTTPD_COMMONLOG then referrer and agent, captured with their quotes",
    ),
    _p(
        "HTTPD20_ERRORLOG",
        r"\[%{HTTPDERROR_DATE:timestamp}\] \[%{LOGLEVEL:loglevel}\] (?:\[client %{IPORHOST:clientip}\] )?"
        "%{GREEDYDATA:message}",
        "an Apache 2.0/2.2 error log line; captures timestamp, loglevel, clientip, message",
    ),
    _p(
        "HTTPD24_ERRORLOG",
        r"\[%{HTTPDERROR_DATE:timestamp}\] \[(?:%{WORD:module})?:%{LOGLEVEL:loglevel}\] "
        r"\[pid %{POSINT:pid}(?::tid %{INT:tid})?\]"
        r"(?: \(%{INT:proxy_errorcode}\)%{DATA:proxy_message}:)?"
        r"(?: \[client %{IPORHOST:clientip}(?::%{POSINT:clientport})?\])?"
        r"(?: (?<errorcode>AH\d+):)? %{GREEDYDATA:message}",
        "an Apache 2.4 error log line; captures timestamp, module, loglevel, pid, tid, proxy_errorcode, "
        "proxy_message, clientip, clientport, errorcode, message",
    ),
    _p(
        "HTTPD_ERRORLOG",
        "%{HTTPD20_ERRORLOG}|%{HTTPD24_ERRORLOG}",
        "an Apache error log line of either version",
    ),
    _p("COMMONAPACHELOG", "%{HTTPD_COMMONLOG}", "the same as HTTPD_COMMONLOG"),
    _p("COMBINEDAPACHELOG", "%{HTTPD_COMBINEDLOG}", "the same as HTTPD_COMBINEDLOG"),
)
