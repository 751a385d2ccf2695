"""Masking of credential fragments in any text bound for a log line, an exception or a queue record.

An endpoint may quote back any part of what it was sent (a 401 body with the token's first 12 characters,
a 400 body or a broken status line with the whole Authorization header), so a plain search for the whole
secret is not enough: every run of ``MIN_RUN`` or more characters taken from a secret form is masked.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

MIN_RUN = 6
MASK = "[REDACTED]"
# Secret forms of this many credentials stay known, so the value from before a rotation is masked too.
_REMEMBERED = 4


class Redactor:
    """Replaces every run of at least ``MIN_RUN`` characters found in one of the secret forms with MASK.

    The forms' ``MIN_RUN``-character windows go in a set; the text is scanned once, one set lookup per
    position, and overlapping or touching matches merge into one mask. A form shorter than ``MIN_RUN`` is
    masked only where it occurs whole.
    """

    __slots__ = ("_short", "_windows")

    def __init__(self, forms: Iterable[str] = ()) -> None:
        windows: set[str] = set()
        short: set[str] = set()
        for form in forms:
            if len(form) >= MIN_RUN:
                windows.update(form[i : i + MIN_RUN] for i in range(len(form) - MIN_RUN + 1))
            elif form:
                short.add(form)
        self._windows = frozenset(windows)
        self._short = tuple(sorted(short, key=len, reverse=True))

    def __bool__(self) -> bool:
        return bool(self._windows or self._short)

    def __call__(self, text: str) -> str:
        for form in self._short:
            text = text.replace(form, MASK)
        windows = self._windows
        if not windows or len(text) < MIN_RUN:
            return text
        pieces: list[str] = []
        kept = 0  # text[kept:] is not masked yet
        start = end = -1  # the mask being grown: text[start:end]
        for i in range(len(text) - MIN_RUN + 1):
            if text[i : i + MIN_RUN] in windows:
                if i > end:
                    if end >= 0:
                        pieces += (text[kept:start], MASK)
                        kept = end
                    start = i
                end = i + MIN_RUN
        if end < 0:
            return text
        pieces += (text[kept:start], MASK, text[end:])
        return "".join(pieces)

    def __repr__(self) -> str:
        return f"Redactor({len(self._windows)} windows, {len(self._short)} short forms)"


_lock = threading.Lock()
_groups: list[tuple[str, ...]] = []  # the forms of each remembered credential, oldest first
_known = Redactor()


def remember(forms: Iterable[str]) -> None:
    """Add one credential's forms to those ``known()`` masks (the JSON log formatter's last guard).

    Forms shorter than ``MIN_RUN`` are left out here: masking every "v1" in every log line would garble
    them. The sender still masks such a credential wherever it quotes the endpoint.
    """
    global _known  # noqa: PLW0603 -- one process-wide set of known secrets, read by the log formatter
    group = tuple(form for form in forms if len(form) >= MIN_RUN)
    with _lock:
        if not group or group in _groups:
            return
        _groups.append(group)
        del _groups[:-_REMEMBERED]
        _known = Redactor(form for forms_of_one in _groups for form in forms_of_one)


def forget() -> None:
    """Drop every remembered form (when the forwarder forgets its credential, and between tests)."""
    global _known  # noqa: PLW0603
    with _lock:
        _groups.clear()
        _known = Redactor()


def known() -> Redactor:
    """What masks every run of a remembered secret form (empty, and false, until one is remembered)."""
    return _known
