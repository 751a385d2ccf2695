"""S3's destination validation of PutBucketNotificationConfiguration, which moto does not do.

S3 checks every topic and queue of the whole configuration on each write, unless the request carries
`x-amz-skip-destination-validation: true`, and refuses the write with InvalidArgument "Unable to validate
the following destination configurations" and one ArgumentName<n>/ArgumentValue<n> pair (destination
ARN, problem) per failing destination (seen in the raw XML of real answers). `DestinationValidation`
answers a client's request with that XML before it is sent (moto never sees it: S3 changes nothing on
a refused write), parsed by botocore's own S3 parser.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.parsers import create_parser

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
TOPIC_GONE = "The destination topic does not exist"
QUEUE_GONE = "The destination queue does not exist"
TOPIC_DENIED = (
    "Permissions on the destination topic do not allow S3 to publish notifications from this bucket"
)


class DestinationValidation:
    """Validates the destinations of one client's notification writes like S3 does."""

    def __init__(self, s3: Any, sns: Any, sqs: Any) -> None:
        self._sns = sns
        self._sqs = sqs
        self.writes: list[bool] = []  # per PutBucketNotificationConfiguration: was validation skipped?
        self.refusals: list[list[tuple[str, str]]] = []
        # Topics (by name fragment) whose policy S3 does not see yet: validations still to refuse.
        self.not_yet_visible: dict[str, int] = {}
        s3.meta.events.register_first("before-call.s3.PutBucketNotificationConfiguration", self._before_call)

    def _before_call(self, model: Any, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, Any] | None:
        """The request as serialised for the wire: its headers and XML body."""
        skipped = str(params["headers"].get("x-amz-skip-destination-validation", "")).lower() == "true"
        self.writes.append(skipped)
        if skipped:
            return None
        root = ET.fromstring(params["body"])  # noqa: S314 - the XML our own client just serialised
        failures = [
            *(
                (arn, problem)
                for arn in _texts(root, "TopicConfiguration", "Topic")
                if (problem := self._topic(arn))
            ),
            *(
                (arn, problem)
                for arn in _texts(root, "QueueConfiguration", "Queue")
                if (problem := self._queue(arn))
            ),
        ]
        if not failures:
            return None
        self.refusals.append(failures)
        details = "".join(
            f"<ArgumentName{n}>{escape(arn)}</ArgumentName{n}><ArgumentValue{n}>{escape(problem)}</ArgumentValue{n}>"
            for n, (arn, problem) in enumerate(failures, start=1)
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidArgument</Code>'
            "<Message>Unable to validate the following destination configurations</Message>"
            f"{details}<RequestId>2B8705F2FD8848F2</RequestId><HostId>aG9zdA==</HostId></Error>"
        )
        answer = {"status_code": 400, "headers": {}, "body": body.encode()}
        parsed = create_parser("rest-xml").parse(answer, model.output_shape)
        return AWSResponse(params["url"], 400, {}, None), parsed

    def _topic(self, arn: str) -> str:
        try:
            policy = json.loads(
                self._sns.get_topic_attributes(TopicArn=arn)["Attributes"].get("Policy", "{}")
            )
        except ClientError:
            return TOPIC_GONE
        for fragment, left in self.not_yet_visible.items():
            if fragment in arn and left > 0:
                self.not_yet_visible[fragment] = left - 1
                return TOPIC_DENIED
        allowed = any(
            s.get("Effect") == "Allow"
            and s.get("Principal", {}).get("Service") == "s3.amazonaws.com"
            and "sns:publish" in str(s.get("Action", "")).lower()
            for s in policy.get("Statement", [])
        )
        return "" if allowed else TOPIC_DENIED

    def _queue(self, arn: str) -> str:
        try:
            self._sqs.get_queue_url(
                QueueName=arn.rsplit(":", 1)[-1], QueueOwnerAWSAccountId=arn.split(":")[4]
            )
        except ClientError:
            return QUEUE_GONE
        return ""


def _texts(root: ET.Element, container: str, field: str) -> list[str]:
    return [str(e.findtext(f"{_NS}{field}")) for e in root.iter(f"{_NS}{container}")]
