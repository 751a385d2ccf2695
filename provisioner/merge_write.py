"""Read-merge-write of a bucket-wide document others edit too: the bucket policy, the notifications.

S3 has no conditional write for either, so of two writers that read the same version the later one
writes back what it read: it drops what the earlier one added, or puts back what it removed. After each
write we therefore read back and, when our change is not there, merge it again into what is there now,
for a bounded number of rounds. Each writer checks only its own change (our Sids, our rule Id): a
writer of this project whose change we overwrote sees that on its own read-back and merges again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from provisioner.errors import ConcurrentChangeError
from provisioner.logs import log_event

logger = logging.getLogger(__name__)

MAX_WRITES = 4
Document = TypeVar("Document")


def merge_write(
    *,
    read: Callable[[], Document],
    merge: Callable[[Document], Document],
    holds: Callable[[Document], bool],
    write: Callable[[Document], None],
    document: str,
    operation: str,
    before_first_write: Callable[[], object] | None = None,
) -> bool:
    """Write `merge(current)` until a read-back shows `holds`; False when nothing needed writing.

    `before_first_write` runs once before anything is written (it registers the undo).
    """
    current = read()
    wanted = merge(current)
    if wanted == current:
        return False
    if before_first_write is not None:
        before_first_write()
    for attempt in range(1, MAX_WRITES + 1):
        write(wanted)
        current = read()
        if holds(current):
            return True
        log_event(
            logger, "concurrent_change_merged_again", logging.WARNING, document=document, attempt=attempt
        )
        wanted = merge(current)
    raise ConcurrentChangeError(
        f"{document} kept changing under this stack: {MAX_WRITES} times it wrote its change and read the "
        f"document back without it, so another writer is changing it at the same moment (CloudTrail shows "
        f"who: {operation} on the bucket); retry once that writer is done"
    )
