"""Raw object bytes -> text lines, streaming: gunzip (multi-member) and split as chunks arrive.

Memory stays bounded by about one input chunk, one decompressed piece (1 MiB) and one line of at
most `max_line_bytes`, whatever the object size, its compression ratio or its line lengths.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from types import ModuleType
from typing import Protocol

_isal: ModuleType | None
try:  # ISA-L inflates about twice as fast as zlib; it ships in the forwarder's Lambda zip.
    from isal import isal_zlib
except ImportError:
    _isal = None
else:
    _isal = isal_zlib

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "CorruptObjectError",
    "Line",
    "compression_for",
    "cut_line",
    "iter_lines",
]

DEFAULT_MAX_LINE_BYTES = 65536

_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 31  # zlib: expect a gzip header and trailer
# Upper bound of one decompressed piece: a highly compressible chunk (a gzip bomb, or a long run
# of identical lines) is drained in pieces of this size instead of being inflated at once.
_PIECE_BYTES = 1 << 20
_SHOWN_BYTES = 16  # bytes that are not gzip are quoted in error messages, in hex, up to this many


class _Inflater(Protocol):
    """What zlib's and ISA-L's decompress objects have in common (ISA-L's has no copy())."""

    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    @property
    def unconsumed_tail(self) -> bytes: ...
    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...


def _new_inflater() -> _Inflater:
    if _isal is not None:
        return _isal.decompressobj(_GZIP_WBITS)
    return zlib.decompressobj(_GZIP_WBITS)


_ZLIB_INFLATER = type(zlib.decompressobj())
_INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error,) if _isal is None else (zlib.error, _isal.error)


@dataclass(frozen=True, slots=True)
class Line:
    """One line of an object: its text (no newline) and whether it was cut at max_line_bytes."""

    text: str
    truncated: bool = False


class CorruptObjectError(ValueError):
    """The object is not valid gzip: not gzip at all, corrupt, cut short, or followed by other bytes."""


def compression_for(name: str) -> bool | None:
    """What `iter_lines` must expect of an object with this key or file name.

    ALB and NLB write gzip files named .log.gz; Classic ELB writes plain .log files. A .gz name whose
    bytes are not gzip is damaged, never text; other names are read as gzip only if they start like it.
    """
    return True if name.endswith(".gz") else None


def iter_lines(
    chunks: Iterable[bytes],
    *,
    compressed: bool | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    skip_lines: int = 0,
) -> Iterator[Line]:
    """Yield the lines of an object from its raw bytes, gzip or plain, in any chunk sizes.

    `compressed` says what the object must be, as its caller knows from the key: True, gzip (bytes
    that do not start with the gzip magic 1f 8b are a CorruptObjectError; an empty object has no
    lines); False, plain text, never decompressed; None, gzip if it starts with the magic, plain
    text otherwise. Concatenated gzip members are read one after the other; zero bytes between or
    after members are padding.

    Lines end at \\n; a trailing \\r is removed; text is UTF-8 with invalid bytes replaced. A final
    empty line (the file ends with \\n) is not a line; an empty line elsewhere is. A line longer than
    max_line_bytes is yielded once, cut to that many bytes (at a character boundary), with
    truncated=True; the rest of it is skipped without being held in memory.

    `skip_lines` lines are read and dropped before the first one yielded (a continuation resuming at line
    skip_lines + 1): gzip is still inflated from the start, but the skipped lines are only counted, by
    their newlines, never split or decoded.
    """
    if max_line_bytes < 1:
        raise ValueError("max_line_bytes must be at least 1")
    if skip_lines < 0:
        raise ValueError("skip_lines must not be negative")
    source = iter(chunks)
    content: Iterator[bytes] = source
    if compressed is None:
        content = _sniffed(source)
    elif compressed:
        content = _gunzip(source)
    return _split_lines(_skipped(content, skip_lines) if skip_lines else content, max_line_bytes)


def _sniffed(source: Iterator[bytes]) -> Iterator[bytes]:
    """The object's content: gunzipped if it starts with the gzip magic, as is otherwise."""
    start = b""
    for chunk in source:
        start += chunk
        if len(start) >= len(_GZIP_MAGIC):
            break
    if start.startswith(_GZIP_MAGIC):
        yield from _gunzip(chain((start,), source))
        return
    if start:
        yield start
    yield from source


def _skipped(pieces: Iterator[bytes], count: int) -> Iterator[bytes]:
    """The content after its first `count` newlines (every line ends at one, however long or empty)."""
    for piece in pieces:
        newlines = piece.count(b"\n")
        if newlines < count:
            count -= newlines
            continue
        end = -1
        for _ in range(count):
            end = piece.index(b"\n", end + 1)
        rest = piece[end + 1 :]
        if rest:
            yield rest
        yield from pieces
        return


def _gunzip(source: Iterator[bytes]) -> Iterator[bytes]:
    """Inflate each gzip member in turn; raise CorruptObjectError saying what is wrong, and where."""
    inflater: _Inflater | None = None  # None between members
    offset = 0  # compressed-stream offset of the first byte of `data`
    member_start = 0
    member_end = 0  # offset just past the last complete member; 0 until one is complete
    pending = b""  # the first byte of a member, held until its second byte shows the magic
    for chunk in source:
        data = pending + chunk if pending else chunk
        pending = b""
        # Output an inflater still holds when a chunk's input is used up comes out with the next
        # chunk; a stream can only end after its trailer, which is read after all output.
        while data:
            if inflater is None:
                if member_end:
                    # Writers may pad between or after members with zero bytes (gzip(1) accepts it).
                    stripped = data.lstrip(b"\x00")
                    offset += len(data) - len(stripped)
                    data = stripped
                    if not data:
                        break
                if len(data) < len(_GZIP_MAGIC):
                    pending = data
                    break
                if not data.startswith(_GZIP_MAGIC):
                    raise _not_gzip(data, source, offset, member_end)
                inflater = _new_inflater()
                member_start = offset
            # zlib states can be copied, which lets a failure be pinned to its exact byte.
            before = inflater.copy() if isinstance(inflater, _ZLIB_INFLATER) else None
            try:
                piece = inflater.decompress(data, _PIECE_BYTES)
            except _INFLATE_ERRORS as exc:
                raise CorruptObjectError(
                    _corruption_message(exc, before, data, offset, member_start)
                ) from None
            if piece:
                yield piece
            ended = inflater.eof
            remaining = inflater.unused_data if ended else inflater.unconsumed_tail
            offset += len(data) - len(remaining)
            if ended:
                inflater = None
                member_end = offset
            data = remaining
    if pending and not _GZIP_MAGIC.startswith(pending):
        raise _not_gzip(pending, source, offset, member_end)
    if inflater is not None or pending:
        start = offset if pending else member_start
        raise CorruptObjectError(
            f"gzip stream ends inside a member (member starting at byte {start}, "
            f"{offset + len(pending)} bytes in total): the object is truncated"
        )


def _not_gzip(data: bytes, rest: Iterator[bytes], offset: int, member_end: int) -> CorruptObjectError:
    """What `data` (at `offset`, not starting with the gzip magic) is: not gzip at all, or trailing bytes."""
    head = data[:_SHOWN_BYTES]
    if not member_end:
        for chunk in rest:  # a few more bytes to show, when the first chunks were tiny
            if len(head) >= _SHOWN_BYTES:
                break
            head += chunk[: _SHOWN_BYTES - len(head)]
        return CorruptObjectError(
            f"the object is not gzip: it starts with {head.hex(' ')} (gzip starts with 1f 8b)"
        )
    count = len(data)
    for chunk in rest:  # read to the end to count the bytes, keeping only the first few
        if len(head) < _SHOWN_BYTES:
            head += chunk[: _SHOWN_BYTES - len(head)]
        count += len(chunk)
    padding = offset - member_end
    return CorruptObjectError(
        f"{padding + count} bytes after the last complete gzip member (ending at byte {member_end - 1}) "
        f"are not gzip: {f'(after {padding} zero bytes) ' if padding else ''}{head.hex(' ')}"
        f"{' ...' if count > len(head) else ''}"
    )


def _corruption_message(
    exc: Exception, before: zlib._Decompress | None, data: bytes, offset: int, member_start: int
) -> str:
    member = f"member starting at byte {member_start}"
    if before is None:
        # ISA-L keeps no copyable state: name the input range the failing call was reading.
        return (
            f"corrupt gzip data at compressed byte offset {offset} or at most {len(data) - 1} bytes "
            f"later ({member}): {exc}"
        )
    bad = offset + _first_bad_byte(before, data)
    return f"corrupt gzip data at compressed byte offset {bad} ({member}): {exc}"


def _first_bad_byte(state: zlib._Decompress, data: bytes) -> int:
    """Smallest prefix of `data` that makes a copy of `state` fail, as an index into `data`.

    Only runs once the stream is known to be corrupt, to name the failing offset precisely.
    """
    low, high = 0, len(data)
    while low < high:
        middle = (low + high) // 2
        if _fails(state.copy(), data[: middle + 1]):
            high = middle
        else:
            low = middle + 1
    return low


def _fails(state: zlib._Decompress, data: bytes) -> bool:
    try:
        while data:
            state.decompress(data, _PIECE_BYTES)
            if state.eof:
                return False
            data = state.unconsumed_tail
    except zlib.error:
        return True
    return False


def _split_lines(pieces: Iterator[bytes], limit: int) -> Iterator[Line]:
    # The partial last line of a piece is carried as bytes, so a multibyte UTF-8 character split
    # between pieces is decoded whole. b"\n" never occurs inside a multibyte sequence, so the
    # complete lines of a piece are decoded in one call, straight from the piece (no copy).
    quarter = limit // 4  # a str of at most this many characters is at most `limit` UTF-8 bytes
    carry = b""
    skipping = False  # inside an oversized line whose head was already yielded
    for piece in pieces:
        start = 0
        if skipping:
            start = piece.find(b"\n") + 1
            if not start:
                continue
            skipping = False
        cut = piece.rfind(b"\n")
        if cut < start:  # no line ends in this piece
            carry += piece[start:]
            if len(carry) > limit:
                yield cut_line(carry, limit)
                carry = b""
                skipping = True
            continue
        if carry:
            newline = piece.find(b"\n", start)
            yield _line_from_bytes(carry + piece[start:newline], limit)
            carry = b""
            start = newline + 1
        if start <= cut:
            text = str(memoryview(piece)[start:cut], "utf-8", "replace")
            if "\r" in text:
                text = text.replace("\r\n", "\n")
                if text.endswith("\r"):
                    text = text[:-1]
            block = text.split("\n")
            if max(map(len, block)) <= quarter:  # the usual case: no line near the limit
                yield from map(Line, block)
            else:
                for line in block:
                    if len(line) > quarter:
                        raw = line.encode()
                        if len(raw) > limit:
                            yield cut_line(raw, limit)
                            continue
                    yield Line(line)
        carry = piece[cut + 1 :]
        if len(carry) > limit:
            yield cut_line(carry, limit)
            carry = b""
            skipping = True
    if carry:
        yield _line_from_bytes(carry, limit)


def _line_from_bytes(raw: bytes, limit: int) -> Line:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if len(raw) > limit:
        return cut_line(raw, limit)
    return Line(raw.decode("utf-8", "replace"))


def cut_line(raw: bytes, limit: int) -> Line:
    """The first `limit` bytes of a line, cut back to a character boundary, flagged as truncated."""
    end = limit
    # Step back over UTF-8 continuation bytes (10xxxxxx) so no character is split in two.
    while end > 0 and limit - end < 3 and (raw[end] & 0xC0) == 0x80:
        end -= 1
    head = raw[:end]
    if head.endswith(b"\r"):
        head = head[:-1]
    return Line(head.decode("utf-8", "replace"), True)
