"""Custom formats: grok patterns compiled once to Python regular expressions, with typed captures.

A grok pattern is a regular expression with references: `%{NAME}` inserts the library pattern NAME (the
common grok names, with this project's definitions in `grok_library`), `%{NAME:field}` also captures what it
matched as `field`, and a third part types the capture: `:int`, `:float`, or `:ts-"LAYOUT"`, a time turned
into ISO 8601 UTC. LAYOUT is a Go reference layout (`2006-01-02 15:04:05.000`) or, when it holds a `%`, a
strftime layout (`%d/%b/%Y:%H:%M:%S %z`). A capture named `timestamp` of HTTPDATE or TIMESTAMP_ISO8601 is
converted without a layout. A named group `(?<field>...)` (Oniguruma, as Logstash writes it) captures too.

No maintained grok library exists for Python (pygrok's last release is from 2016), so this module expands
references itself; compile errors and unknown names are `GrokError`s, raised when the configuration is read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from typing import Any

from forwarder.parsers import FormatMismatchError, ParseError, ParseFunction, to_float, to_int
from forwarder.parsers.grok_library import PATTERNS

__all__ = ["GrokError", "GrokPattern", "compile_grok", "go_layout", "grok_parser", "library"]

# %{NAME}, %{NAME:field}, %{NAME:field:type}; a ts-"..." type may hold any character but a double quote.
_REFERENCE = re.compile(r'%\{(\w+)(?::([^:}\s]+)(?::(ts-"[^"]*"|[^}]*))?)?\}')
# An Oniguruma named group, `(?<name>`, not a lookbehind `(?<=` / `(?<!`, and not an escaped parenthesis.
_NAMED_GROUP = re.compile(r"(?<!\\)\(\?<([A-Za-z_]\w*)>")
# Patterns that are times by their name: converted when captured as `timestamp`, without a layout.
_TIME_FIELD = "timestamp"
_MAX_DEPTH = 40  # far deeper than any library pattern nests; a cycle is reported before this


class GrokError(ValueError):
    """A grok pattern that cannot be used: an unknown pattern name, a bad type, or a regex that fails."""


@dataclass(frozen=True, slots=True)
class Capture:
    """One named capture: its regex group, the record field it fills and how its text is converted."""

    group: str
    field: str
    convert: Callable[[str], Any] | None = None


@dataclass(frozen=True, slots=True)
class GrokPattern:
    """A compiled grok pattern: the regex, its captures in pattern order, and the field holding the time."""

    source: str
    regex: re.Pattern[str]
    captures: tuple[Capture, ...]
    time_field: str | None


@cache
def library() -> dict[str, str]:
    """The pattern library, name -> definition (grok syntax), from `grok_library.PATTERNS`."""
    return {pattern.name: pattern.regex for pattern in PATTERNS}


def compile_grok(pattern: str) -> GrokPattern:
    """Expand and compile a grok pattern; GrokError naming the unknown pattern, bad type or regex error."""
    if not pattern.strip():
        raise GrokError("the grok pattern is empty")
    captures: list[Capture] = []
    expanded = _expand(pattern, captures, ())
    try:
        # ASCII: \d, \w and \b are ASCII digits, word characters and boundaries, as grok tools read them.
        regex = re.compile(expanded, re.ASCII)
    except re.error as exc:
        raise GrokError(f"the grok pattern does not compile as a regular expression: {exc.msg}") from None
    time_field = next((c.field for c in captures if isinstance(c.convert, TimeField)), None)
    return GrokPattern(pattern, regex, tuple(captures), time_field)


def _expand(text: str, captures: list[Capture], stack: tuple[str, ...]) -> str:
    """`text` with every reference replaced by its definition (named ones as groups), recursively."""
    if len(stack) > _MAX_DEPTH:
        raise GrokError(f"%{{{stack[0]}}} nests more than {_MAX_DEPTH} patterns deep")
    out: list[str] = []
    at = 0
    for match in _REFERENCE.finditer(text):
        out.append(_named_groups(text[at : match.start()], captures))
        at = match.end()
        name, field, kind = match[1], match[2], match[3]
        definition = library().get(name)
        if definition is None:
            raise GrokError(f"unknown grok pattern %{{{name}}}")
        if name in stack:
            raise GrokError(f"%{{{name}}} refers to itself")
        if not field:
            out.append(f"(?:{_expand(definition, captures, (*stack, name))})")
            continue
        # Listed before the captures inside the definition: captures stay in the order they are written.
        group = f"g{len(captures)}"
        captures.append(Capture(group, field, _converter(name, field, kind, match[0])))
        out.append(f"(?P<{group}>{_expand(definition, captures, (*stack, name))})")
    out.append(_named_groups(text[at:], captures))
    return "".join(out)


def _named_groups(text: str, captures: list[Capture]) -> str:
    """Oniguruma's `(?<field>` as a Python group of a generated name (fields may repeat or hold any text)."""

    def group(match: re.Match[str]) -> str:
        name = f"g{len(captures)}"
        captures.append(Capture(name, match[1]))
        return f"(?P<{name}>"

    return _NAMED_GROUP.sub(group, text)


def _converter(name: str, field: str, kind: str | None, reference: str) -> Callable[[str], Any] | None:
    if not kind:
        automatic = _AUTO_TIMES.get(name) if field == _TIME_FIELD else None
        return TimeField(field, *automatic()) if automatic else None
    if kind == "int":
        return lambda value: to_int(value, field)
    if kind == "float":
        return lambda value: to_float(value, field)
    if kind.startswith('ts-"') and kind.endswith('"') and len(kind) > 5:
        layout = kind[4:-1]
        parse = strftime_layout(layout) if "%" in layout else go_layout(layout)
        return TimeField(field, parse, f"layout {layout!r}")
    raise GrokError(f'{reference}: unknown type {kind!r} (use int, float or ts-"LAYOUT")')


# Searching a pattern through a line can cost up to the square of the line's length (a 16 KB run of "a."
# took 3 s against COMBINEDAPACHELOG, measured), so one hostile line could hold an invocation until its
# deadline. Longer lines are not matched: they are sent raw, with the reason.
MAX_GROK_LINE_CHARS = 4096


def grok_parser(name: str, grok: GrokPattern) -> ParseFunction:
    """A parse function for lines of the custom format `name`: the captures as fields, types applied.

    The pattern is searched for anywhere in the line, as Logstash does (anchor it with ^ and $ to match
    whole lines). A capture that matched nothing (an alternative not taken) is left out; when two
    captures share a field, the first that matched wins. The time capture is also copied to `time`.
    """
    search = grok.regex.search
    captures = grok.captures
    time_field = grok.time_field if grok.time_field != "time" else None
    mismatch = f"does not match custom format {name!r}"
    too_long = f"longer than {MAX_GROK_LINE_CHARS} characters: not matched against custom format {name!r}"

    def parse(line: str) -> dict[str, Any]:
        if len(line) > MAX_GROK_LINE_CHARS:
            raise FormatMismatchError(too_long)
        match = search(line)
        if match is None:
            raise FormatMismatchError(mismatch)
        record: dict[str, Any] = {}
        for capture in captures:
            value = match[capture.group]
            if not value or capture.field in record:
                continue
            if capture.convert is None:
                record[capture.field] = value
                continue
            try:
                record[capture.field] = capture.convert(value)
            except ParseError as exc:
                raise ParseError(f"custom format {name!r}: {exc}") from None
        if time_field is not None and time_field in record:
            record.setdefault("time", record[time_field])
        return record

    return parse


# ---------------------------------------------------------------------------------------------
# Times. Every converter returns ISO 8601 in UTC ending in Z; a time logged without a zone is taken as UTC.

TimeParser = Callable[[str], datetime]


@dataclass(frozen=True, slots=True)
class TimeField:
    """Converts the text of one time capture to ISO 8601 UTC; ParseError naming the field and layout."""

    field: str
    parse: TimeParser
    layout: str

    def __call__(self, value: str) -> str:
        try:
            return iso_utc(self.parse(value))
        except (ValueError, OverflowError):
            raise ParseError(f"{self.field} is not a time in {self.layout}: {value[:40]!r}") from None


def iso_utc(moment: datetime) -> str:
    """ISO 8601 UTC with Z: seconds, milliseconds or microseconds, as precise as the time is."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    micro = moment.microsecond
    if micro:
        text += f".{micro // 1000:03d}" if micro % 1000 == 0 else f".{micro:06d}"
    return text + "Z"


def strftime_layout(layout: str) -> TimeParser:
    """A parser of times written in a strftime layout; GrokError if Python cannot parse with it."""
    reference = datetime(2006, 1, 2, 15, 4, 5, 123000, UTC)
    try:
        datetime.strptime(reference.strftime(layout), layout)
    except ValueError as exc:
        raise GrokError(f"time layout {layout!r} is not a strftime layout Python can parse ({exc})") from None
    has_year = any(d in layout for d in ("%Y", "%y", "%G", "%c", "%x"))

    def parse(value: str) -> datetime:
        moment = datetime.strptime(value, layout)
        return moment if has_year else moment.replace(year=datetime.now(UTC).year)

    return parse


# Go reference layout tokens (package time, nextStdChunk), longest first where one starts another.
_GO_TOKENS = (
    "January",
    "Jan",
    "Monday",
    "Mon",
    "MST",
    "2006",
    "-07:00:00",
    "-070000",
    "-07:00",
    "-0700",
    "-07",
    "Z07:00:00",
    "Z070000",
    "Z07:00",
    "Z0700",
    "Z07",
    "01",
    "02",
    "03",
    "04",
    "05",
    "06",
    "15",
    "_2",
    "1",
    "2",
    "3",
    "4",
    "5",
    "PM",
    "pm",
)
_GO_FRACTION = re.compile(r"[.,](0+|9+)(?!\d)")
_TWO = r"\d\d"
_ONE_OR_TWO = r"\d{1,2}"
# token -> (regex group, regex); every group of one token gets that token's group name.
_GO_REGEX: dict[str, tuple[str, str]] = {
    "January": ("month_name", "[A-Za-z]{3,9}"),
    "Jan": ("month_name", "[A-Za-z]{3}"),
    "Monday": ("weekday", "[A-Za-z]{6,9}"),
    "Mon": ("weekday", "[A-Za-z]{3}"),
    "MST": ("zone", "[A-Z]{3,5}"),
    "2006": ("year", r"\d{4}"),
    "06": ("year2", _TWO),
    "01": ("month", _TWO),
    "1": ("month", _ONE_OR_TWO),
    "02": ("day", _TWO),
    "2": ("day", _ONE_OR_TWO),
    "_2": ("day", r" ?\d{1,2}"),
    "15": ("hour", _ONE_OR_TWO),
    "03": ("hour12", _TWO),
    "3": ("hour12", _ONE_OR_TWO),
    "04": ("minute", _TWO),
    "4": ("minute", _ONE_OR_TWO),
    "05": ("second", _TWO),
    "5": ("second", _ONE_OR_TWO),
    "PM": ("ampm", "AM|PM"),
    "pm": ("ampm", "am|pm"),
    "-07:00:00": ("offset", r"[+-]\d\d:\d\d:\d\d"),
    "-070000": ("offset", r"[+-]\d{6}"),
    "-07:00": ("offset", r"[+-]\d\d:\d\d"),
    "-0700": ("offset", r"[+-]\d{4}"),
    "-07": ("offset", r"[+-]\d\d"),
    "Z07:00:00": ("offset", r"Z|[+-]\d\d:\d\d:\d\d"),
    "Z070000": ("offset", r"Z|[+-]\d{6}"),
    "Z07:00": ("offset", r"Z|[+-]\d\d:\d\d"),
    "Z0700": ("offset", r"Z|[+-]\d{4}"),
    "Z07": ("offset", r"Z|[+-]\d\d"),
}
_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)


def go_layout(layout: str) -> TimeParser:
    """A parser of times written in a Go reference layout (Mon Jan 2 15:04:05 MST 2006).

    A zone abbreviation (MST) is matched but not used: like Go for an abbreviation it does not know, the
    time is taken as UTC. A layout without a year takes the current year (syslog writes none).
    """
    parts: list[str] = []
    groups: set[str] = set()
    at = 0
    while at < len(layout):
        fraction = _GO_FRACTION.match(layout, at)
        if fraction is not None and "second" in groups and "fraction" not in groups:
            digits = fraction[1]
            # .000 is exactly that many digits; .999 any number of them, or none (Go drops trailing zeros).
            exact = rf"[.,](?P<fraction>\d{{{len(digits)}}})"
            parts.append(exact if digits[0] == "0" else r"(?:[.,](?P<fraction>\d+))?")
            groups.add("fraction")
            at = fraction.end()
            continue
        token = next((t for t in _GO_TOKENS if layout.startswith(t, at)), None)
        if token is None:
            parts.append(re.escape(layout[at]))
            at += 1
            continue
        group, pattern = _GO_REGEX[token]
        if group in groups:
            raise GrokError(f"time layout {layout!r} gives the {group.replace('_', ' ')} twice")
        groups.add(group)
        parts.append(f"(?P<{group}>{pattern})")
        if group == "second" and not _GO_FRACTION.match(layout, at + len(token)):
            # Go accepts a fractional second after the seconds even when the layout has none.
            parts.append(r"(?:[.,](?P<fraction>\d+))?")
            groups.add("fraction")
        at += len(token)
    if not groups & {"month", "month_name"} or "day" not in groups:
        raise GrokError(f"time layout {layout!r} has no month and day (Go reference: 2006-01-02 15:04:05)")
    regex = re.compile("".join(parts), re.ASCII)

    def parse(value: str) -> datetime:
        match = regex.fullmatch(value)
        if match is None:
            raise ValueError(value)
        return _go_moment(match.groupdict())

    return parse


def _go_moment(found: dict[str, str | None]) -> datetime:
    if found.get("year"):
        year = int(found["year"] or 0)
    elif found.get("year2"):
        short = int(found["year2"] or 0)
        year = short + (1900 if short >= 69 else 2000)  # Go's rule for two-digit years
    else:
        year = datetime.now(UTC).year
    month_name = found.get("month_name")
    month = _month_number(month_name) if month_name else int(found["month"] or 0)
    hour = int(found.get("hour") or 0)
    if found.get("hour12"):
        hour = int(found["hour12"] or 0) % 12
        if (found.get("ampm") or "").lower() == "pm":
            hour += 12
    fraction = found.get("fraction") or ""
    moment = datetime(
        year,
        month,
        int((found["day"] or "").strip()),
        hour,
        int(found.get("minute") or 0),
        int(found.get("second") or 0),
        int(fraction[:6].ljust(6, "0")) if fraction else 0,
    )
    offset = found.get("offset")
    if offset and offset != "Z":
        digits = offset[1:].replace(":", "")
        seconds = int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60 + int(digits[4:6] or 0)
        moment = moment.replace(tzinfo=timezone(timedelta(seconds=-seconds if offset[0] == "-" else seconds)))
    return moment


def _month_number(name: str) -> int:
    lowered = name.lower()
    for number, full in enumerate(_MONTHS, 1):
        if full == lowered or (len(lowered) == 3 and full.startswith(lowered)):
            return number
    raise ValueError(name)


# Captures named `timestamp` of these patterns are converted without a layout: pattern -> (parser, layout).
_AUTO_TIMES: dict[str, Callable[[], tuple[TimeParser, str]]] = {
    # HTTPDATE is 02/Jan/2006:15:04:05 -0700 (Apache and nginx); its MONTHDAY allows one digit.
    "HTTPDATE": lambda: (go_layout("2/Jan/2006:15:04:05 -0700"), "HTTPDATE"),
    # Python 3.11's fromisoformat reads every form TIMESTAMP_ISO8601 matches: T or space, . or , and Z.
    "TIMESTAMP_ISO8601": lambda: (datetime.fromisoformat, "ISO 8601"),
}
