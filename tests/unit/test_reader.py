"""Streaming reader: gzip detection, multi-member gzip, chunk boundaries, line rules, size limits."""

from __future__ import annotations

import gzip
import random
import re
import tracemalloc
import zlib
from collections.abc import Callable, Iterator

import pytest

from forwarder import reader
from forwarder.reader import CorruptObjectError, Line, iter_lines


@pytest.fixture(autouse=True, params=["isal", "zlib"])
def inflater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with ISA-L (shipped in the Lambda zip) and with plain zlib (its fallback)."""
    if request.param == "zlib":
        monkeypatch.setattr(reader, "_isal", None)
    else:
        assert reader._isal is not None, "isal is a forwarder dependency and must be installed for tests"
    return str(request.param)


def failing_range(message: str) -> tuple[int, int]:
    """(first, last) compressed byte the error message says the failure is in."""
    found = re.search(r"offset (\d+)(?: or at most (\d+) bytes later)?", message)
    assert found, message
    first = int(found.group(1))
    return first, first + int(found.group(2) or 0)


SAMPLE_TEXT = "first line\r\nsecond é line\n\nthird 日本語 line\r\nlast line without newline"
SAMPLE_LINES = ["first line", "second é line", "", "third 日本語 line", "last line without newline"]


def texts(chunks: list[bytes], **kwargs: int) -> list[str]:
    return [line.text for line in iter_lines(chunks, **kwargs)]


def split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def two_members(data: bytes) -> bytes:
    middle = len(data) // 2
    return gzip.compress(data[:middle]) + gzip.compress(data[middle:])


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda data: data, id="plain"),
        pytest.param(gzip.compress, id="gzip"),
        pytest.param(two_members, id="gzip-two-members"),
        pytest.param(
            lambda data: gzip.compress(data[:7]) + b"\x00" * 5 + gzip.compress(data[7:]), id="zero-pad"
        ),
    ],
)
def test_every_chunk_boundary_gives_the_same_lines(encode: Callable[[bytes], bytes]) -> None:
    data = encode(SAMPLE_TEXT.encode())
    for size in range(1, len(data) + 1):
        assert texts(split_every(data, size)) == SAMPLE_LINES, f"chunk size {size}"


def test_every_single_split_point_including_inside_multibyte_characters() -> None:
    data = SAMPLE_TEXT.encode()
    for cut in range(len(data) + 1):
        assert texts([data[:cut], data[cut:]]) == SAMPLE_LINES, f"split at byte {cut}"
    compressed = two_members(data)
    for cut in range(len(compressed) + 1):
        assert texts([compressed[:cut], b"", compressed[cut:]]) == SAMPLE_LINES, f"split at byte {cut}"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a\nb\n", ["a", "b"]),
        (b"a\nb", ["a", "b"]),
        (b"a\n\nb\n", ["a", "", "b"]),
        (b"a\n\n", ["a", ""]),
        (b"\n", [""]),
        (b"", []),
        (b"a\r\nb\r\n", ["a", "b"]),
        (b"a\r\r\nb\r", ["a\r", "b"]),
        (b"a\rb\n", ["a\rb"]),
        (b"caf\xc3\n\xff\xfeok\n", ["caf\ufffd", "\ufffd\ufffdok"]),
    ],
    ids=[
        "final-newline",
        "no-final-newline",
        "middle-empty-line",
        "trailing-empty-line",
        "only-newline",
        "empty-object",
        "crlf",
        "only-last-cr-stripped",
        "inner-cr-kept",
        "invalid-utf8-replaced",
    ],
)
def test_line_rules(data: bytes, expected: list[str]) -> None:
    assert texts([data]) == expected
    assert texts([gzip.compress(data)]) == expected


def test_lines_carry_no_truncation_flag_normally() -> None:
    assert list(iter_lines([b"x\n"])) == [Line("x", False)]


def test_gzip_is_detected_by_magic_even_when_the_first_chunk_is_one_byte() -> None:
    compressed = gzip.compress(b"hello\nworld\n")
    assert texts([compressed[:1], compressed[1:2], compressed[2:]]) == ["hello", "world"]


def test_plain_text_starting_like_nothing_special_passes_through() -> None:
    assert texts([b"\x1f", b"not gzip\n"]) == ["\x1fnot gzip"]


def test_line_at_the_limit_is_whole_and_one_byte_more_is_cut() -> None:
    lines = list(iter_lines([b"a" * 10 + b"\n" + b"b" * 11 + b"\nc\n"], max_line_bytes=10))
    assert lines == [Line("a" * 10, False), Line("b" * 10, True), Line("c", False)]


def test_cut_never_splits_a_multibyte_character() -> None:
    # 'é' is 2 bytes: a 9-byte limit falls inside the fifth one, which is dropped whole.
    lines = list(iter_lines([("é" * 10 + "\n").encode()], max_line_bytes=9))
    assert lines == [Line("é" * 4, True)]


def test_oversized_line_spanning_chunks_is_yielded_once_and_the_next_line_survives() -> None:
    chunks = [b"ok\n" + b"x" * 7, b"y" * 20, b"z" * 5 + b"\nnext\n"]
    assert list(iter_lines(chunks, max_line_bytes=8)) == [
        Line("ok", False),
        Line("xxxxxxxy", True),
        Line("next", False),
    ]


def test_oversized_last_line_without_newline() -> None:
    assert list(iter_lines([b"a\n", b"b" * 30], max_line_bytes=4)) == [Line("a", False), Line("bbbb", True)]


def fifty_megabyte_line(chunk: bytes) -> Iterator[bytes]:
    yield b"before\n"
    for _ in range(50):
        yield chunk  # the same 1 MiB object each time: only the reader's own buffers count
    yield b"\nafter\n"


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_fifty_megabyte_line_keeps_memory_bounded(compressed: bool) -> None:
    chunk = b"x" * (1 << 20)
    source: Iterator[bytes] = fifty_megabyte_line(chunk)
    if compressed:
        # Compress lazily in 1 MiB steps so the test itself never holds the whole object.
        def gzipped(parts: Iterator[bytes]) -> Iterator[bytes]:
            packer = zlib.compressobj(1, zlib.DEFLATED, 31)
            for part in parts:
                yield packer.compress(part)
            yield packer.flush()

        source = gzipped(source)
    tracemalloc.start()
    try:
        lines = list(iter_lines(source, max_line_bytes=65536))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(len(line.text), line.truncated) for line in lines] == [(6, False), (65536, True), (5, False)]
    assert lines[1].text == "x" * 65536
    assert peak < 6 * (1 << 20), f"peak {peak / (1 << 20):.1f} MiB"


def test_highly_compressed_object_is_inflated_in_bounded_pieces() -> None:
    # 64 MiB of text compress to ~200 KiB; the reader must not inflate them in one go.
    compressed = gzip.compress((b"y" * 1023 + b"\n") * (64 << 10), compresslevel=9)
    assert len(compressed) < 1 << 20
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_lines([compressed]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 64 << 10
    assert peak < 8 * (1 << 20), f"peak {peak / (1 << 20):.1f} MiB"


# gzip.compress writes a 10-byte header; the first deflate byte follows. Setting its block type
# bits to 11 (reserved) makes zlib fail exactly there.
INVALID_BLOCK_TYPE = 0b110


def test_corrupt_gzip_names_the_failing_offset(inflater: str) -> None:
    damaged = bytearray(gzip.compress(("2024-05-01 some log line with text\n" * 2000).encode()))
    damaged[10] = INVALID_BLOCK_TYPE
    with pytest.raises(CorruptObjectError, match="member starting at byte 0") as caught:
        list(iter_lines(split_every(bytes(damaged), 3)))
    assert isinstance(caught.value, ValueError)
    first, last = failing_range(str(caught.value))
    assert first <= 10 <= last
    if inflater == "zlib":  # zlib's state can be copied: the exact byte is found
        assert (first, last) == (10, 10)
        assert "invalid block type" in str(caught.value)


def test_damaged_data_is_reported_where_the_inflater_notices_it(inflater: str) -> None:
    damaged = bytearray(gzip.compress(("2024-05-01 some log line with text\n" * 2000).encode()))
    damaged[40] ^= 0xFF  # decodes to wrong text; only the CRC in the 8-byte trailer catches it
    with pytest.raises(CorruptObjectError) as caught:
        list(iter_lines(split_every(bytes(damaged), 64)))
    first, last = failing_range(str(caught.value))
    assert first <= last < len(damaged)
    assert last >= len(damaged) - 8
    if inflater == "zlib":
        assert first == last >= len(damaged) - 8


def test_corrupt_second_member_is_reported_with_its_offset(inflater: str) -> None:
    first_member = gzip.compress(b"one\n")
    second = bytearray(gzip.compress(b"two\n" * 500))
    second[10] = INVALID_BLOCK_TYPE
    with pytest.raises(
        CorruptObjectError, match=rf"\(member starting at byte {len(first_member)}\)"
    ) as caught:
        list(iter_lines([first_member + bytes(second)]))
    first, last = failing_range(str(caught.value))
    assert first <= len(first_member) + 10 <= last
    if inflater == "zlib":
        assert first == last


def test_truncated_gzip_is_an_error_not_a_short_file() -> None:
    compressed = gzip.compress(b"a line\n" * 1000)
    with pytest.raises(CorruptObjectError, match="truncated"):
        list(iter_lines([compressed[:-4]]))
    with pytest.raises(CorruptObjectError, match="truncated"):
        list(iter_lines([compressed + compressed[:12]]))


def test_truncated_next_member_header_is_truncation_not_garbage() -> None:
    with pytest.raises(CorruptObjectError, match="the object is truncated"):
        list(iter_lines([b"\x1f"], compressed=True))  # one byte of the magic: a member cut short
    compressed = gzip.compress(b"a line\n")
    for tail in (b"\x1f", b"\x1f\x8b", b"\x1f\x8b\x08"):
        for size in (1, 2, len(compressed) + len(tail)):
            with pytest.raises(CorruptObjectError, match="the object is truncated"):
                list(iter_lines(split_every(compressed + tail, size)))


@pytest.mark.parametrize("compressed", [None, True], ids=["detected", "required"])
def test_garbage_after_the_last_member_is_named_for_what_it_is(compressed: bool | None) -> None:
    first, second = gzip.compress(b"fine\n"), gzip.compress(b"also fine\n")
    data = first + second + b"trailing junk"
    end = len(first) + len(second) - 1
    expected = (
        f"13 bytes after the last complete gzip member (ending at byte {end}) are not gzip: "
        "74 72 61 69 6c 69 6e 67 20 6a 75 6e 6b"
    )
    for size in (1, 3, len(data)):
        seen: list[str] = []
        with pytest.raises(CorruptObjectError) as caught:
            for line in iter_lines(split_every(data, size), compressed=compressed):
                seen.append(line.text)
        assert str(caught.value) == expected, f"chunk size {size}"
        assert "truncated" not in str(caught.value)
        assert seen == ["fine", "also fine"]  # the complete members' lines come first


def test_garbage_after_zero_padding_counts_the_padding_and_shows_the_garbage() -> None:
    member = gzip.compress(b"fine\n")
    junk = bytes(range(0x80, 0xA0))  # 32 bytes: only the first 16 are shown
    with pytest.raises(CorruptObjectError) as caught:
        list(iter_lines([member + bytes(3) + junk]))
    message = str(caught.value)
    assert message.startswith(
        f"35 bytes after the last complete gzip member (ending at byte {len(member) - 1}) are not gzip: "
    )
    assert message.endswith(f"(after 3 zero bytes) {junk[:16].hex(' ')} ...")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"2025-03-14 plain text under a .gz name\n", id="plain-text"),
        pytest.param(b"\x1f\x8c" + gzip.compress(b"x\n")[2:], id="damaged-magic"),
        pytest.param(random.Random(7).randbytes(4096), id="random-bytes"),  # noqa: S311 -- test data
        pytest.param(bytes(10) + gzip.compress(b"x\n"), id="leading-zeros"),
    ],
)
def test_compressed_object_that_is_not_gzip_is_corrupt_and_yields_nothing(data: bytes) -> None:
    for size in (1, len(data)):
        lines = iter_lines(split_every(data, size), compressed=True)
        with pytest.raises(CorruptObjectError, match=r"^the object is not gzip: it starts with ") as caught:
            next(lines)
    assert data[:8].hex(" ") in str(caught.value)
    assert "(gzip starts with 1f 8b)" in str(caught.value)


@pytest.mark.parametrize("chunks", [[], [b""], [b"", b""]], ids=["no-chunks", "one-empty", "two-empty"])
def test_empty_compressed_object_has_no_lines(chunks: list[bytes]) -> None:
    assert list(iter_lines(chunks, compressed=True)) == []


def test_plain_object_is_never_decompressed() -> None:
    data = gzip.compress(b"x\n", mtime=0)  # mtime 0: the time bytes could hold a newline
    assert texts([data]) == ["x"]  # detected by its magic
    assert [line.text for line in iter_lines([data], compressed=False)] == [
        data.decode("utf-8", "replace").rstrip("\n")
    ]


def test_lines_before_the_damage_are_yielded_first() -> None:
    compressed = gzip.compress(b"good\n") + b"\x1f\x8b\x08\x00garbage"
    seen: list[str] = []
    with pytest.raises(CorruptObjectError):
        for line in iter_lines([compressed]):
            seen.append(line.text)
    assert seen == ["good"]


def test_max_line_bytes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_line_bytes"):
        iter_lines([b"x"], max_line_bytes=0)


@pytest.mark.parametrize("piece_bytes", [1, 5, 64])
def test_tiny_output_pieces_lose_nothing(monkeypatch: pytest.MonkeyPatch, piece_bytes: int) -> None:
    # Inflating in pieces much smaller than the input leaves output pending inside zlib between
    # calls and chunks; every byte must still come out, in order, at any chunk size.
    monkeypatch.setattr("forwarder.reader._PIECE_BYTES", piece_bytes)
    data = ("abcabcabc " * 50 + "\n").encode() * 20 + SAMPLE_TEXT.encode()
    compressed = two_members(data)
    expected = ["abcabcabc " * 50] * 20 + SAMPLE_LINES
    for size in (1, 2, 7, 31, len(compressed)):
        assert texts(split_every(compressed, size)) == expected, f"chunk size {size}"


# -- resuming part-way (a continuation starts at line skip_lines + 1) ---------------------------------------
@pytest.mark.parametrize("skip", range(len(SAMPLE_LINES) + 2))
def test_skipped_lines_are_exactly_the_first_ones_at_any_chunk_size(skip: int) -> None:
    for data in (SAMPLE_TEXT.encode(), two_members(SAMPLE_TEXT.encode())):
        for size in (1, 3, 17, len(data)):
            assert texts(split_every(data, size), skip_lines=skip) == SAMPLE_LINES[skip:], (skip, size)


def test_skipping_counts_an_oversized_line_as_one_line() -> None:
    data = b"a" * 100 + b"\n" + b"b" * 100 + b"\nc\n"
    whole = list(iter_lines(split_every(data, 7), max_line_bytes=10))
    for skip in range(4):
        assert list(iter_lines(split_every(data, 7), max_line_bytes=10, skip_lines=skip)) == whole[skip:]


def test_skip_lines_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="skip_lines"):
        iter_lines([b"x"], skip_lines=-1)
