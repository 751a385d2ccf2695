"""Read-merge-write with read-back: a concurrent overwrite is merged again, a bounded number of times."""

from __future__ import annotations

import pytest

from provisioner.errors import ConcurrentChangeError
from provisioner.merge_write import MAX_WRITES, merge_write


class Store:
    """A shared document; `overwrites` times, another writer puts back the version it read before ours."""

    def __init__(self, overwrites: int) -> None:
        self.value: frozenset[str] = frozenset({"theirs"})
        self.overwrites = overwrites
        self.writes = 0

    def write(self, value: frozenset[str]) -> None:
        self.writes += 1
        stale = self.value
        self.value = value
        if self.overwrites:
            self.overwrites -= 1
            self.value = stale | {f"other-{self.writes}"}


def add_ours(store: Store) -> bool:
    return merge_write(
        read=lambda: store.value,
        merge=lambda current: current | {"ours"},
        holds=lambda current: "ours" in current,
        write=store.write,
        document="the document",
        operation="PutDocument",
    )


@pytest.mark.parametrize("overwrites", range(MAX_WRITES))
def test_our_change_is_merged_again_into_what_the_other_writer_wrote(overwrites: int) -> None:
    store = Store(overwrites)

    assert add_ours(store) is True

    assert store.writes == overwrites + 1
    assert store.value == {"theirs", "ours", *(f"other-{n}" for n in range(1, overwrites + 1))}


def test_nothing_is_written_when_the_change_is_already_there() -> None:
    store = Store(0)
    store.value = frozenset({"theirs", "ours"})

    assert add_ours(store) is False
    assert store.writes == 0


def test_a_writer_that_never_stops_fails_with_a_reason_after_bounded_writes() -> None:
    store = Store(MAX_WRITES)

    with pytest.raises(
        ConcurrentChangeError, match=r"the document kept changing .* PutDocument on the bucket"
    ):
        add_ours(store)
    assert store.writes == MAX_WRITES
