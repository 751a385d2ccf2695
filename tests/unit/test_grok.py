"""Custom formats: grok patterns, typed captures, time layouts, CUSTOM_FORMATS, the pattern library."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from forwarder.config import Config, ConfigError
from forwarder.formats import CUSTOM_FORMATS, FormatSettings
from forwarder.parsers import FormatMismatchError, ParseError
from forwarder.parsers.grok import GrokError, compile_grok, go_layout, grok_parser, library, strftime_layout
from forwarder.parsers.grok_library import PATTERNS
from forwarder.reader import Line
from forwarder.records import iter_records

ACCESS = (
    '%{HTTPDATE:timestamp} "(?:%{WORD:http_method}|-) %{NOTSPACE:request} HTTP/%{NUMBER:http_version}" '
    "%{NUMBER:status:int}"
)
GO_TIME = '%{GREEDYDATA:timestamp:ts-"2006-01-02 15:04:05.000"}'


def parse(pattern: str, line: str, name: str = "web") -> dict[str, Any]:
    return grok_parser(name, compile_grok(pattern))(line)


@pytest.mark.parametrize(
    ("pattern", "line", "expected"),
    [
        pytest.param(
            ACCESS,
            '10/Oct/2000:13:55:36 -0700 "GET /apache_pb.gif HTTP/1.0" 200',
            {
                "timestamp": "2000-10-10T20:55:36Z",
                "http_method": "GET",
                "request": "/apache_pb.gif",
                "http_version": "1.0",
                "status": 200,
                "time": "2000-10-10T20:55:36Z",
            },
            id="access-log-httpdate-and-int",
        ),
        pytest.param(
            ACCESS,
            '2/Oct/2000:13:55:36 +0000 "- /health HTTP/1.1" 404',
            {
                "timestamp": "2000-10-02T13:55:36Z",
                "request": "/health",
                "http_version": "1.1",
                "status": 404,
                "time": "2000-10-02T13:55:36Z",
            },
            id="alternative-not-taken-is-absent",
        ),
        pytest.param(
            GO_TIME,
            "2024-03-05 07:08:09.123",
            {"timestamp": "2024-03-05T07:08:09.123Z", "time": "2024-03-05T07:08:09.123Z"},
            id="go-layout-without-zone-is-utc",
        ),
        pytest.param(
            '%{DATA:timestamp:ts-"%d/%b/%Y:%H:%M:%S %z"} %{NUMBER:took:float}s',
            "05/Mar/2024:07:08:09 +0100 0.25s",
            {"timestamp": "2024-03-05T06:08:09Z", "took": 0.25, "time": "2024-03-05T06:08:09Z"},
            id="strftime-layout-and-float",
        ),
        pytest.param(
            "%{TIMESTAMP_ISO8601:timestamp} %{LOGLEVEL:level} %{GREEDYDATA:message}",
            "2024-03-05T07:08:09.5+01:00 WARN disk 91% full",
            {
                "timestamp": "2024-03-05T06:08:09.500Z",
                "level": "WARN",
                "message": "disk 91% full",
                "time": "2024-03-05T06:08:09.500Z",
            },
            id="iso8601-without-layout",
        ),
        pytest.param(
            "%{TIMESTAMP_ISO8601:when} %{WORD:word}",
            "2024-03-05 07:08:09 hello",
            {"when": "2024-03-05 07:08:09", "word": "hello"},
            id="only-timestamp-is-converted-without-layout",
        ),
        pytest.param(
            "%{IP:client}:%{POSINT:port:int} (?<user>\\w+) %{NOTSPACE:bytes:int}",
            "10.0.0.1:443 alice -",
            {"client": "10.0.0.1", "port": 443, "user": "alice", "bytes": None},
            id="oniguruma-named-group-and-dash",
        ),
        pytest.param(
            "%{URIHOST:server} %{WORD:user} %{WORD:user}",
            "db.internal:5432 alice bob",
            {"server": "db.internal:5432", "port": "5432", "user": "alice"},
            id="first-capture-of-a-name-wins-outer-before-inner",
        ),
        pytest.param(
            "%{COMBINEDAPACHELOG}",
            '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "-" "curl/8"',
            {
                "clientip": "127.0.0.1",
                "ident": "-",
                "auth": "frank",
                "timestamp": "2000-10-10T20:55:36Z",
                "verb": "GET",
                "request": "/a.gif",
                "httpversion": "1.0",
                "response": "200",
                "bytes": "2326",
                "referrer": '"-"',
                "agent": '"curl/8"',
                "time": "2000-10-10T20:55:36Z",
            },
            id="library-captures-nested-in-a-named-pattern",
        ),
    ],
)
def test_grok_captures_become_typed_fields(pattern: str, line: str, expected: dict[str, Any]) -> None:
    assert list(parse(pattern, line).items()) == list(expected.items())  # in the order they are written


@pytest.mark.parametrize(
    ("layout", "value", "expected"),
    [
        ("2006-01-02 15:04:05.000", "2024-03-05 07:08:09.123", "2024-03-05T07:08:09.123Z"),
        ("2006-01-02T15:04:05Z07:00", "2024-03-05T07:08:09Z", "2024-03-05T07:08:09Z"),
        ("2006-01-02T15:04:05Z07:00", "2024-03-05T07:08:09-02:30", "2024-03-05T09:38:09Z"),
        ("2006-01-02 15:04:05.999999 -0700", "2024-03-05 07:08:09.5 +0200", "2024-03-05T05:08:09.500Z"),
        ("2006-01-02 15:04:05.999999", "2024-03-05 07:08:09", "2024-03-05T07:08:09Z"),
        ("2006-01-02 15:04:05.000000", "2024-03-05 07:08:09.000042", "2024-03-05T07:08:09.000042Z"),
        ("2006-01-02 15:04:05", "2024-03-05 07:08:09.25", "2024-03-05T07:08:09.250Z"),
        ("02/01/06 3:04PM", "05/03/24 7:08PM", "2024-03-05T19:08:00Z"),
        ("02/01/06 03:04 pm", "05/03/69 12:08 am", "1969-03-05T00:08:00Z"),
        ("Mon Jan _2 15:04:05 MST 2006", "Tue Mar  5 07:08:09 UTC 2024", "2024-03-05T07:08:09Z"),
        ("Monday, 2 January 2006 15:04:05 -07", "Tuesday, 5 March 2024 07:08:09 +05", "2024-03-05T02:08:09Z"),
        ("1/2/2006 15:04", "3/5/2024 7:08", "2024-03-05T07:08:00Z"),
        ("2006-01-02,15:04:05,000", "2024-03-05,07:08:09,123", "2024-03-05T07:08:09.123Z"),
    ],
)
def test_go_layouts(layout: str, value: str, expected: str) -> None:
    assert parse(f'%{{GREEDYDATA:t:ts-"{layout}"}}', value) == {"t": expected, "time": expected}


def test_a_layout_without_a_year_takes_the_current_year() -> None:
    moment = go_layout("Jan _2 15:04:05")("Mar  5 07:08:09")
    assert (moment.month, moment.day, moment.hour) == (3, 5, 7)
    assert strftime_layout("%b %d %H:%M:%S")("Mar 05 07:08:09").year == moment.year >= 2024


@pytest.mark.parametrize(
    ("pattern", "line", "reason"),
    [
        (ACCESS, "not an access log line", "does not match custom format 'web'"),
        ("%{WORD:status:int}", "ok", "custom format 'web': status is not an integer: 'ok'"),
        ("%{WORD:ratio:float}", "half", "custom format 'web': ratio is not a number: 'half'"),
        (GO_TIME, "2024-03-05 07:08:09", "timestamp is not a time in layout '2006-01-02 15:04:05.000'"),
        (GO_TIME, "2024-02-30 07:08:09.000", "timestamp is not a time in layout"),
        ("%{HTTPDATE:timestamp}", "30/Feb/2000:13:55:36 -0700", "timestamp is not a time in HTTPDATE"),
    ],
)
def test_a_line_that_does_not_fit_says_why_naming_the_format(pattern: str, line: str, reason: str) -> None:
    with pytest.raises(ParseError, match=re.escape(reason)) as caught:
        parse(pattern, line)
    assert isinstance(caught.value, FormatMismatchError) == reason.startswith("does not match")


def test_a_line_longer_than_grok_is_given_is_sent_raw_with_the_reason() -> None:
    """Searching a pattern through a line costs up to the square of its length (a 16 KB run of 'a.' took
    3 s against COMBINEDAPACHELOG), so a hostile line could stall an invocation: such lines are not
    matched at all and go raw, saying why."""
    parse = grok_parser("web", compile_grok("%{COMBINEDAPACHELOG}"))
    with pytest.raises(
        FormatMismatchError,
        match=r"longer than 4096 characters: not matched against "
        r"custom format 'web'",
    ):
        parse("a." * 2500)
    line = '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "-" "curl/8"'
    assert parse(line)["clientip"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("pattern", "error"),
    [
        ("%{NOSUCHPATTERN:x}", "unknown grok pattern %{NOSUCHPATTERN}"),
        ("%{WORD:x} %{IPV7}", "unknown grok pattern %{IPV7}"),
        ("%{WORD:x:integer}", "%{WORD:x:integer}: unknown type 'integer'"),
        (
            "%{WORD:x} (unclosed",
            "does not compile as a regular expression: missing ), unterminated subpattern",
        ),
        ('%{DATA:t:ts-"%Q"}', "time layout '%Q' is not a strftime layout"),
        ('%{DATA:t:ts-"15:04:05"}', "time layout '15:04:05' has no month and day"),
        ('%{DATA:t:ts-"2006-01-02 2006"}', "gives the year twice"),
        ("   ", "the grok pattern is empty"),
    ],
)
def test_a_pattern_that_cannot_be_used_is_a_grok_error_naming_it(pattern: str, error: str) -> None:
    with pytest.raises(GrokError, match=re.escape(error)):
        compile_grok(pattern)


# --- CUSTOM_FORMATS -----------------------------------------------------------------------------------------


def settings(*formats: dict[str, Any]) -> tuple[FormatSettings, list[str]]:
    problems: list[str] = []
    return FormatSettings.from_env({CUSTOM_FORMATS: json.dumps(list(formats))}, problems), problems


def test_custom_formats_are_chosen_by_key_prefix_and_log_group_glob_first_listed_first() -> None:
    formats, problems = settings(
        {"name": "nginx", "pattern": ACCESS, "s3_prefix": "web/nginx/", "log_group": "/ecs/nginx-*"},
        {"name": "app", "pattern": GO_TIME, "s3_prefix": ["web/", "app/"], "log_group": "/app/*"},
    )
    assert problems == []
    assert [f.name for f in formats.custom_formats] == ["nginx", "app"]
    assert formats.format_for_key("web/nginx/2024/a.log.gz").name == "nginx"  # type: ignore[union-attr]
    assert formats.format_for_key("web/other.log").name == "app"  # type: ignore[union-attr]
    assert formats.format_for_key("AWSLogs/123/elasticloadbalancing/x.log.gz") is None
    assert formats.format_for_log_group("/ecs/nginx-prod").name == "nginx"  # type: ignore[union-attr]
    assert formats.format_for_log_group("/app/orders/api").name == "app"  # type: ignore[union-attr]
    assert formats.format_for_log_group("/ECS/nginx-prod") is None  # globs are case-sensitive


def test_no_custom_formats_by_default() -> None:
    assert FormatSettings.from_env({CUSTOM_FORMATS: " "}, []).custom_formats == ()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{not json", "CUSTOM_FORMATS is not JSON"),
        ('{"name": "web"}', "CUSTOM_FORMATS must be a JSON list of objects"),
        (
            '[{"name": "web", "pattern": "%{NOPE:x}", "s3_prefix": "w/"}]',
            "format 'web': unknown grok pattern %{NOPE}",
        ),
        ('[{"name": "web", "pattern": "%{WORD:x}"}]', "format 'web' needs an s3_prefix or a log_group"),
        (
            '[{"name": "Web", "pattern": "%{WORD:x}", "s3_prefix": "w/"}]',
            "format 1 needs a name of lower-case",
        ),
        ('[{"name": "alb_access", "pattern": "x", "s3_prefix": "w/"}]', "the name is a built-in log type"),
        ('[{"name": "web", "pattern": "x", "s3_prefix": "w/", "prefix": "w/"}]', "unknown keys prefix"),
        ('[{"name": "web", "s3_prefix": "w/"}]', "format 'web' needs a pattern"),
        ('[{"name": "web", "pattern": "x", "log_group": [""]}]', "log_group must be a non-empty string"),
    ],
)
def test_bad_custom_formats_are_configuration_errors_naming_the_format(value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        Config.from_env({"HTTP_ENDPOINT": "https://logs.example.com", CUSTOM_FORMATS: value})


def test_two_formats_of_one_name_are_refused() -> None:
    one = {"name": "web", "pattern": "%{WORD:x}", "s3_prefix": "w/"}
    _, problems = settings(one, one)
    assert problems == ["CUSTOM_FORMATS: format 'web': the name is taken"]


def test_records_of_a_custom_format_carry_its_name_and_unmatched_lines_go_raw() -> None:
    formats, _ = settings({"name": "nginx", "pattern": ACCESS, "s3_prefix": "web/"})
    custom = formats.custom_formats[0]
    lines = [Line('10/Oct/2000:13:55:36 -0700 "GET / HTTP/1.1" 200'), Line("garbage")]
    records = list(
        iter_records(lines, log_type=custom.name, provenance=lambda r, n: None, parse=custom.parse)
    )
    assert records[0]["log_type"] == "nginx"
    assert records[0]["status"] == 200
    assert records[1] == {
        "raw": "garbage",
        "parse_error": "does not match custom format 'nginx'",
        "log_type": "nginx",
    }


def test_the_readme_example_configures_and_parses_as_documented() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Custom formats (grok)", 1)[1]
    example = section.split("```json\n", 1)[1].split("```", 1)[0]
    formats, problems = settings(*json.loads(example))
    assert problems == []
    custom = formats.format_for_key("web/access/2024/host.log.gz")
    assert custom is not None
    assert custom.parse('10/Oct/2000:13:55:36 -0700 "GET /index.html HTTP/1.1" 200') == {
        "timestamp": "2000-10-10T20:55:36Z",
        "http_method": "GET",
        "request": "/index.html",
        "http_version": "1.1",
        "status": 200,
        "time": "2000-10-10T20:55:36Z",
    }
    assert formats.format_for_log_group("/ecs/worker").name == "app_timing"  # type: ignore[union-attr]


# --- The pattern library ------------------------------------------------------------------------------------

# Every name of the common grok vocabulary the library defines; users' patterns refer to them.
_STANDARD_NAMES = """
    USERNAME USER EMAILLOCALPART EMAILADDRESS INT BASE10NUM NUMBER BASE16NUM BASE16FLOAT POSINT NONNEGINT
    WORD NOTSPACE SPACE DATA GREEDYDATA QUOTEDSTRING QS UUID URN MAC CISCOMAC WINDOWSMAC COMMONMAC IPV6 IPV4
    IP HOSTNAME IPORHOST HOSTPORT PATH UNIXPATH TTY WINPATH URIPROTO URIHOST URIPATH URIPARAM URIPATHPARAM URI
    MONTH MONTHNUM MONTHNUM2 MONTHDAY DAY YEAR HOUR MINUTE SECOND TIME DATE_US DATE_EU ISO8601_TIMEZONE
    ISO8601_SECOND TIMESTAMP_ISO8601 TIMESTAMP_CN DATE DATESTAMP TZ DATESTAMP_RFC822 DATESTAMP_RFC2822
    DATESTAMP_OTHER DATESTAMP_EVENTLOG SYSLOGTIMESTAMP PROG SYSLOGPROG SYSLOGHOST SYSLOGFACILITY HTTPDATE
    SYSLOGBASE LOGLEVEL HTTPDUSER HTTPDERROR_DATE HTTPD_COMMONLOG HTTPD_COMBINEDLOG HTTPD20_ERRORLOG
    HTTPD24_ERRORLOG HTTPD_ERRORLOG COMMONAPACHELOG COMBINEDAPACHELOG"""
STANDARD_NAMES = frozenset(_STANDARD_NAMES.split())
# The Apache httpd documentation's example lines (Log Files: Common and Combined Log Format, Error Log).
APACHE_COMMON = '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'
APACHE_COMBINED = APACHE_COMMON + ' "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"'
APACHE22_ERROR = (
    "[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied by server configuration: "
    "/export/home/live/ap/htdocs/test"
)
APACHE24_ERROR = (
    "[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187] "
    "File does not exist: /usr/local/apache2/htdocs/favicon.ico"
)
SYSLOG = "Mar  5 07:08:09 web-1 sshd[812]:"

# name -> (texts it matches whole, texts it does not match whole).
EXAMPLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "USERNAME": (("frank", "svc.backup_2", "-"), ("fr ank", "a@b")),
    "USER": (("frank",), ("",)),
    "EMAILLOCALPART": (("jane.doe+logs", "o'brien"), ("jane..doe", ".jane")),
    "EMAILADDRESS": (("jane.doe+logs@example.com", "ops@mail-1.example.org"), ("jane@", "@example.com")),
    "INT": (("42", "-7", "+3", "0"), ("4.2", "0x1F", "")),
    "BASE10NUM": (("42", "-0.5", ".25", "+3.0"), ("1e5", "4.", "-", "1.2.3")),
    "NUMBER": (("200", "0.043"), ("-", "abc")),
    "BASE16NUM": (("0x1F", "ff", "-0XAB"), ("0xZZ", "g1")),
    "BASE16FLOAT": (("0x1.8", "ff.f", ".a"), ("0x", "1.g")),
    "POSINT": (("1", "443"), ("0", "0443", "-1")),
    "NONNEGINT": (("0", "007", "443"), ("-1", "1.5")),
    "WORD": (("hello", "snake_case_9"), ("two words", "dash-ed")),
    "NOTSPACE": (("/a?b=c", '"quoted"'), ("a b", "")),
    "SPACE": (("", "  \t"), ("x",)),
    "DATA": (("", "anything at all"), ("two\nlines",)),
    "GREEDYDATA": (("", "anything at all"), ("two\nlines",)),
    "QUOTEDSTRING": (('"a \\"b\\" c"', "'it'", "`tick`", '""'), ('"open', "bare", '"a" "b"')),
    "QS": (('"Mozilla/5.0"',), ("Mozilla/5.0",)),
    "UUID": (("123e4567-e89b-12d3-a456-426614174000",), ("123e4567-e89b-12d3-a456-42661417400",)),
    "URN": (("urn:isbn:0451450523", "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"), ("urn:", "isbn:1")),
    "MAC": (("0123.4567.89ab", "01-23-45-67-89-AB", "01:23:45:67:89:ab"), ("01:23:45:67:89", "0123-4567")),
    "CISCOMAC": (("0123.4567.89ab",), ("01:23:45:67:89:ab",)),
    "WINDOWSMAC": (("01-23-45-67-89-AB",), ("01:23:45:67:89:ab",)),
    "COMMONMAC": (("01:23:45:67:89:ab",), ("01-23-45-67-89-AB", "01:23:45:67:89:zz")),
    "IPV6": (
        (
            "2001:db8::1",
            "::1",
            "::",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "1:2::3:4:5:6:7",
            "::ffff:192.0.2.1",
            "64:ff9b::192.0.2.33",
            "fe80::1%eth0",
        ),
        ("2001:db8::1::2", "1:2:3:4:5:6:7:8:9", "12345::1", "2001:db8:::1", "192.0.2.1", "::ffff:256.0.0.1"),
    ),
    "IPV4": (("192.0.2.10", "10.0.0.0", "255.255.255.255"), ("256.1.1.1", "1.2.3", "01.2.3.4", "1.2.3.4.5")),
    "IP": (("192.0.2.10", "2001:db8::1"), ("example.com",)),
    "HOSTNAME": (
        ("db-1.internal.example.com", "localhost", "xn--bcher-kva.example"),
        ("-bad.example", "bad-.example", "a..b", "under_score.example", "example.com."),
    ),
    "IPORHOST": (("192.0.2.10", "::1", "web-1"), ("web 1", "[::1]")),
    "HOSTPORT": (
        ("example.com:8080", "192.0.2.1:443", "[2001:db8::1]:443"),
        ("example.com", "example.com:0"),
    ),
    "PATH": (("/var/log/app.log", "C:\\Windows\\system32"), ("var/log", "")),
    "UNIXPATH": (
        ("/var/log/app.log", "/", "/opt/app-1.2/bin/run+x"),
        ("var/log", "/with space", '/"quoted"'),
    ),
    "TTY": (("/dev/pts/0", "/dev/tty1", "/dev/ttyS0", "/dev/console"), ("/dev/sda1", "/dev/pts/")),
    "WINPATH": (("C:\\Windows\\system32", "\\\\server\\share\\a.txt"), ("C:/Windows", "\\no\\drive")),
    "URIPROTO": (("https", "s3", "svn+ssh"), ("1http", "ht tp")),
    "URIHOST": (("example.com", "example.com:8443", "[2001:db8::1]:443", "192.0.2.1:80"), ("example.com:",)),
    "URIPATH": (("/a/b%20c/index.html", "/", "/api/v1/users/42;v=2"), ("a/b", "/a b", "/a?b")),
    "URIPARAM": (("?q=grok&page=2", "?"), ("q=grok", "?a b")),
    "URIPATHPARAM": (("/search?q=grok#top", "/index.html", "/a?b=c"), ("?q=grok", "/a b")),
    "URI": (
        (
            "https://user@example.com:8443/a/b?x=1",
            "s3://bucket/key",
            "http://192.0.2.1/",
            "http://[::1]:8080/x",
        ),
        ("example.com/a", "https://", "https:/example.com"),
    ),
    "MONTH": (("Jan", "March", "sept", "DEC"), ("Okt", "Janu", "13")),
    "MONTHNUM": (("3", "03", "12"), ("0", "13", "003")),
    "MONTHNUM2": (("03", "12"), ("3", "13")),
    "MONTHDAY": (("5", "05", "31"), ("0", "00", "32")),
    "DAY": (("Mon", "Tuesday", "thu", "Thurs"), ("Mo", "Funday")),
    "YEAR": (("2025", "25"), ("202", "20255")),
    "HOUR": (("7", "09", "23"), ("24", "123")),
    "MINUTE": (("05", "59"), ("5", "60")),
    "SECOND": (("02", "60", "02.412", "02,412"), ("61", "2", "02.")),
    "TIME": (("09:30:02", "9:30:02.412", "23:59:60"), ("09:30", "24:00:00", "09:3:02")),
    "DATE_US": (("03/14/2025", "3-14-25"), ("14/03/2025", "2025-03-14")),
    "DATE_EU": (("14.03.2025", "14/3/25"), ("03.14.2025", "2025-03-14")),
    "ISO8601_TIMEZONE": (("Z", "+01:00", "-0530", "+01"), ("+1", "UTC", "+01:60")),
    "ISO8601_SECOND": (("02", "02.412"), ("2",)),
    "TIMESTAMP_ISO8601": (
        (
            "2025-03-14T09:30:02.412Z",
            "2025-03-14 09:30:02,412+01:00",
            "2025-03-14T09:30",
            "2025-03-14T09:30:02",
        ),
        (
            "2025-3-14T09:30:02",
            "2025-03-14",
            "2025-03-14T9:30:02",
            "25-03-14T09:30:02",
            "2025-03-14X09:30",
            "2016-12-31T23:59:60Z",
        ),
    ),
    "TIMESTAMP_CN": (
        ("2025-03-14 09:30:02", "2025/03/14 09:30:02.412", "2025年3月14日 09:30:02"),
        ("14-03-2025 09:30:02", "2025-03-14"),
    ),
    "DATE": (("03/14/2025", "14.03.2025"), ("2025-03-14",)),
    "DATESTAMP": (("03/14/2025 09:30:02", "14.03.2025-09:30:02"), ("03/14/2025T09:30:02",)),
    "TZ": (("UTC", "GMT", "PST", "CEST", "AEDT"), ("utc", "+0100", "ABCDEF")),
    "DATESTAMP_RFC822": (("Fri Mar 14 2025 09:30:02 UTC",), ("Fri, 14 Mar 2025 09:30:02 +0000",)),
    "DATESTAMP_RFC2822": (
        ("Fri, 14 Mar 2025 09:30:02 +0000", "Fri, 14 Mar 2025 09:30:02 GMT"),
        ("Fri Mar 14 2025 09:30:02 UTC",),
    ),
    "DATESTAMP_OTHER": (
        ("Fri Mar 14 09:30:02 UTC 2025", "Fri Mar  4 09:30:02 CET 2025"),
        ("Fri Mar 14 2025",),
    ),
    "DATESTAMP_EVENTLOG": (("20250314093002",), ("2025031409300", "20251314093002")),
    "HTTPDATE": (
        ("10/Oct/2000:13:55:36 -0700", "2/Oct/2000:13:55:36 +0000", "10/Oct/2000:13:55:36.250 -0700"),
        (
            "10/October/2000:13:55:36 -0700",
            "10/Oct/2000 13:55:36 -0700",
            "10/Oct/2000:13:55:36",
            "10/10/2000",
        ),
    ),
    "SYSLOGTIMESTAMP": (("Mar  5 07:08:09", "Mar 15 07:08:09"), ("2025-03-05 07:08:09", "Mar 5")),
    "PROG": (("sshd", "postfix/smtpd", "systemd-logind"), ("sshd[812]", "a b", "prog:")),
    "SYSLOGPROG": (("sshd[812]", "kernel"), ("sshd[]", "sshd[0]")),
    "SYSLOGHOST": (("web-1", "192.0.2.1"), ("web 1",)),
    "SYSLOGFACILITY": (("<4.6>", "<0.0>"), ("<4>", "4.6")),
    "SYSLOGBASE": ((SYSLOG, "Mar  5 07:08:09 <4.6> web-1 kernel:"), ("Mar  5 07:08:09 web-1 sshd[812]",)),
    "LOGLEVEL": (
        ("DEBUG", "info", "Warning", "ERR", "crit", "FATAL", "emerg", "trace3"),
        ("verbose", "INFOS"),
    ),
    "HTTPDUSER": (("frank", "jane@example.com", "-"), ("fr ank",)),
    "HTTPDERROR_DATE": (
        ("Wed Oct 11 14:32:52 2000", "Fri Sep 09 10:42:29.902022 2011"),
        ("Oct 11 14:32:52",),
    ),
    "HTTPD_COMMONLOG": (
        (APACHE_COMMON, '192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "-" 408 -'),
        (APACHE_COMBINED, "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] GET / 200 2326"),
    ),
    "HTTPD_COMBINEDLOG": ((APACHE_COMBINED,), (APACHE_COMMON,)),
    "HTTPD20_ERRORLOG": ((APACHE22_ERROR,), (APACHE24_ERROR,)),
    "HTTPD24_ERRORLOG": (
        (
            APACHE24_ERROR,
            "[Fri Sep 09 10:42:29.902022 2011] [:error] [pid 1] AH00128: File does not exist: /x",
        ),
        (APACHE22_ERROR,),
    ),
    "HTTPD_ERRORLOG": ((APACHE22_ERROR, APACHE24_ERROR), (APACHE_COMMON,)),
    "COMMONAPACHELOG": ((APACHE_COMMON,), ("not a log line",)),
    "COMBINEDAPACHELOG": ((APACHE_COMBINED,), (APACHE_COMMON,)),
}


def test_the_library_defines_every_standard_name_with_a_meaning_and_examples() -> None:
    assert set(library()) == STANDARD_NAMES == set(EXAMPLES)
    assert all(pattern.meaning for pattern in PATTERNS)
    assert len(PATTERNS) == len(STANDARD_NAMES)  # no name defined twice


@pytest.mark.parametrize("name", sorted(STANDARD_NAMES))
def test_every_library_pattern_compiles_and_matches_its_examples(name: str) -> None:
    regex = compile_grok(f"%{{{name}}}").regex
    matches, misses = EXAMPLES[name]
    assert [text for text in matches if not regex.fullmatch(text)] == []
    assert [text for text in misses if regex.fullmatch(text)] == []


@pytest.mark.parametrize(
    ("pattern", "line", "expected"),
    [
        pytest.param(
            "%{COMBINEDAPACHELOG}",
            APACHE_COMBINED,
            {
                "clientip": "127.0.0.1",
                "ident": "-",
                "auth": "frank",
                "timestamp": "2000-10-10T20:55:36Z",
                "verb": "GET",
                "request": "/apache_pb.gif",
                "httpversion": "1.0",
                "response": "200",
                "bytes": "2326",
                "referrer": '"http://www.example.com/start.html"',
                "agent": '"Mozilla/4.08 [en] (Win98; I ;Nav)"',
                "time": "2000-10-10T20:55:36Z",
            },
            id="apache-combined",
        ),
        pytest.param(
            "%{HTTPD_COMMONLOG}",
            '192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "-" 408 -',
            {
                "clientip": "192.0.2.1",
                "ident": "-",
                "auth": "-",
                "timestamp": "2000-10-10T20:55:36Z",
                "rawrequest": "-",
                "response": "408",
                "time": "2000-10-10T20:55:36Z",
            },
            id="common-log-without-a-request",
        ),
        pytest.param(
            "%{HTTPD_ERRORLOG}",
            APACHE22_ERROR,
            {
                "timestamp": "Wed Oct 11 14:32:52 2000",
                "loglevel": "error",
                "clientip": "127.0.0.1",
                "message": "client denied by server configuration: /export/home/live/ap/htdocs/test",
            },
            id="apache-2.2-error",
        ),
        pytest.param(
            "%{HTTPD_ERRORLOG}",
            "[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] "
            "[client 72.15.99.187:51234] AH00128: File does not exist: /favicon.ico",
            {
                "timestamp": "Fri Sep 09 10:42:29.902022 2011",
                "module": "core",
                "loglevel": "error",
                "pid": "35708",
                "tid": "4328636416",
                "clientip": "72.15.99.187",
                "clientport": "51234",
                "errorcode": "AH00128",
                "message": "File does not exist: /favicon.ico",
            },
            id="apache-2.4-error",
        ),
        pytest.param(
            "%{SYSLOGBASE} %{GREEDYDATA:message}",
            "Mar  5 07:08:09 <4.6> web-1 sshd[812]: Accepted publickey for deploy",
            {
                "timestamp": "Mar  5 07:08:09",
                "facility": "4",
                "priority": "6",
                "logsource": "web-1",
                "program": "sshd",
                "pid": "812",
                "message": "Accepted publickey for deploy",
            },
            id="syslog-base",
        ),
        pytest.param(
            "%{URI:url}",
            "see https://example.com:8443/a?b=1 now",
            {"url": "https://example.com:8443/a?b=1", "port": "8443"},
            id="uri-in-running-text",
        ),
        pytest.param(
            "%{IPV6:client} %{NUMBER:ms}",
            "fe80::1%eth0 12",
            {"client": "fe80::1%eth0", "ms": "12"},
            id="ipv6-zone-is-part-of-the-address",
        ),
    ],
)
def test_composite_patterns_capture_their_fields(pattern: str, line: str, expected: dict[str, Any]) -> None:
    assert list(parse(pattern, line).items()) == list(expected.items())


@pytest.mark.parametrize(
    "value",
    [
        "2025-03-14T09:30:02.412Z",
        "2025-03-14 09:30:02,412+01:00",
        "2025-03-14T09:30+0100",
        "2025-03-14T09:30:02+01",
        "2025-03-14T09:30:02.1234567-0530",
    ],
)
def test_every_iso8601_timestamp_the_library_matches_converts(value: str) -> None:
    assert parse("^%{TIMESTAMP_ISO8601:timestamp}$", value)["time"].startswith("2025-03-14T")
