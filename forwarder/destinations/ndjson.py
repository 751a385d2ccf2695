"""``ndjson``: one JSON record per line (Vector, Cribl, Logstash's http input, webhooks).

Not Fluent Bit's http input: it refuses any Content-Type other than application/json (or form data).

Any 2xx means the batch was accepted; there is no document id, so ``event_id`` travels as a field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forwarder import jsonutil
from forwarder.destinations import DELIVERED, Framing, Verdict, status_verdict

if TYPE_CHECKING:
    from forwarder.config import Config
    from forwarder.sender import Batch, HttpResponse


class Ndjson:
    """Each record followed by a newline; nothing around them."""

    name = "ndjson"
    content_type = "application/x-ndjson"
    framing = Framing()
    extra_headers = ()
    accepts = "gzip newline-delimited JSON (one record per line)"
    encode = staticmethod(jsonutil.dumps_line)

    def __init__(self, config: Config) -> None:
        del config  # nothing to configure

    def read_response(self, response: HttpResponse, sent: Batch) -> Verdict:
        """Any 2xx: every record accepted."""
        return status_verdict(response, sent) or DELIVERED
