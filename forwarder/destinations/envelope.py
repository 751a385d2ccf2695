"""``json``: the default body, gzip JSON ``{"logs": [record, ...]}``; any 2xx means the batch was accepted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forwarder import jsonutil
from forwarder.destinations import DELIVERED, Framing, Verdict, status_verdict

if TYPE_CHECKING:
    from forwarder.config import Config
    from forwarder.sender import Batch, HttpResponse


class JsonEnvelope:
    """Records joined with "," inside ``{"logs":[`` ... ``]}``."""

    name = "json"
    content_type = "application/json"
    framing = Framing(prefix=b'{"logs":[', separator=b",", suffix=b"]}")
    extra_headers = ()
    accepts = 'gzip JSON {"logs": [...]}'
    encode = staticmethod(jsonutil.dumps)

    def __init__(self, config: Config) -> None:
        del config  # nothing to configure

    def read_response(self, response: HttpResponse, sent: Batch) -> Verdict:
        """Any 2xx: every record accepted (the body is not read)."""
        return status_verdict(response, sent) or DELIVERED
