"""The bucket's event notifications: one rule of ours merged into the existing configuration.

PutBucketNotificationConfiguration replaces the whole configuration, so every write is read-merge-write:
every other topic, queue and Lambda rule and the EventBridge switch are written back exactly as read.
S3 refuses two rules for the same event type whose prefix and suffix filters overlap.

S3 also validates every topic, queue and Lambda destination of the whole configuration on each write
(it sends each an s3:TestEvent) unless the request sets SkipDestinationValidation, so one rule of
someone else whose destination is gone would fail every write. Writes that only remove or restore rules
skip validation; the write that adds our rule keeps it, retries while our fresh topic policy propagates
and names the rule that failed. Every change is read back and merged again if a concurrent writer
replaced it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from provisioner.deadline import Deadline
from provisioner.errors import PreconditionError, error_code, show
from provisioner.logs import log_event
from provisioner.merge_write import merge_write
from provisioner.naming import LOG_SUFFIX

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

OUR_EVENTS = ("s3:ObjectCreated:*",)
_LISTS = (
    ("TopicConfigurations", "TopicArn", "topic"),
    ("QueueConfigurations", "QueueArn", "queue"),
    ("LambdaFunctionConfigurations", "LambdaFunctionArn", "Lambda function"),
)
_LIST_KEYS = frozenset(key for key, _, _ in _LISTS)

Config = dict[str, Any]

logger = logging.getLogger(__name__)

# SetTopicAttributes returns before S3 sees the new topic policy, so S3's first validation of our topic
# can fail for a few seconds: retry for about 20 s (within the function's deadline) before giving up.
VALIDATION_RETRY_DELAYS = (2.0, 4.0, 6.0, 8.0)
RETRY_SLEEP: Callable[[float], None] = time.sleep
# S3's answer when a destination fails: InvalidArgument with this message and one ArgumentName<n>
# (the destination ARN; for a Lambda function "<arn>, null") and ArgumentValue<n> (the problem) each.
_VALIDATION_MESSAGE = "unable to validate the following destination configurations"


@dataclass(frozen=True, slots=True)
class Conflict:
    """An existing rule that would overlap ours."""

    rule_id: str
    kind: str
    destination: str
    events: tuple[str, ...]
    prefix: str
    suffix: str

    def describe(self) -> str:
        """How the rule reads in a reason."""
        filters = []
        if self.prefix:
            filters.append(f"prefix '{show(self.prefix, 120)}'")
        if self.suffix:
            filters.append(f"suffix '{show(self.suffix, 40)}'")
        shown_filter = " and ".join(filters) if filters else "no filter"
        return (
            f"rule '{show(self.rule_id, 120)}' ({', '.join(self.events)}, {shown_filter}) sending to "
            f"{self.kind} {show(self.destination, 200)}"
        )


def filter_values(rule: dict[str, Any]) -> tuple[str, str]:
    """(prefix, suffix) of a rule's key filter; names are case-insensitive, missing means empty."""
    prefix = suffix = ""
    for item in rule.get("Filter", {}).get("Key", {}).get("FilterRules", []):
        name = str(item.get("Name", "")).lower()
        if name == "prefix":
            prefix = str(item.get("Value", ""))
        elif name == "suffix":
            suffix = str(item.get("Value", ""))
    return prefix, suffix


def _event_category(event: str) -> tuple[str, str]:
    # "s3:ObjectCreated:Put" -> ("ObjectCreated", "Put"); "s3:ReducedRedundancyLostObject" -> (..., "")
    parts = event.split(":")
    category = parts[1] if len(parts) > 1 else event
    detail = parts[2] if len(parts) > 2 else ""
    return category, detail


def events_overlap(a: Iterable[str], b: Iterable[str]) -> bool:
    """Two event lists share an event type; a `*` detail covers every detail of its category."""
    for x in a:
        cx, dx = _event_category(x)
        for y in b:
            cy, dy = _event_category(y)
            if cx == cy and ("*" in (dx, dy) or dx == dy):
                return True
    return False


def filters_overlap(prefix_a: str, suffix_a: str, prefix_b: str, suffix_b: str) -> bool:
    """Some key can match both filters: prefixes prefix-related and suffixes suffix-related."""
    prefixes = prefix_a.startswith(prefix_b) or prefix_b.startswith(prefix_a)
    suffixes = suffix_a.endswith(suffix_b) or suffix_b.endswith(suffix_a)
    return prefixes and suffixes


def find_conflicts(
    config: Config, key_prefix: str, ignore_ids: Iterable[str], suffix: str = LOG_SUFFIX
) -> list[Conflict]:
    """Existing rules (other than `ignore_ids`) that overlap our rule for `key_prefix`."""
    ignore = set(ignore_ids)
    conflicts = []
    for list_key, dest_key, kind in _LISTS:
        for rule in config.get(list_key, []):
            rule_id = str(rule.get("Id", ""))
            if rule_id in ignore:
                continue
            events = tuple(str(e) for e in rule.get("Events", []))
            prefix, other_suffix = filter_values(rule)
            if events_overlap(OUR_EVENTS, events) and filters_overlap(
                key_prefix, suffix, prefix, other_suffix
            ):
                conflicts.append(
                    Conflict(
                        rule_id or "(no id)", kind, str(rule.get(dest_key, "")), events, prefix, other_suffix
                    )
                )
    return conflicts


def conflict_reason(conflicts: list[Conflict], bucket: str, key_prefix: str) -> str:
    """What the user reads when an existing rule stands in the way, with the ways out that apply."""
    first = conflicts[0]
    more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
    options = ["remove that rule or narrow it so it cannot match ALB log files (*.log.gz under AWSLogs/)"]
    if first.prefix:
        options.append("choose another Prefix for the logs")
    options.append(f"or skip this stack and read the log events from that rule's {first.kind}")
    return (
        f"bucket {show(bucket)} already has a notification {first.describe()}{more}, which overlaps the rule "
        f"this stack needs (s3:ObjectCreated:*, prefix '{show(key_prefix, 160)}', suffix '{LOG_SUFFIX}'); S3 "
        f"allows only one rule per event type for overlapping keys. To fix: {'; '.join(options)}"
    )


def our_rule(rule_id_value: str, topic_arn: str, key_prefix: str) -> dict[str, Any]:
    """Our topic rule: every created log file under the account's log prefix."""
    return {
        "Id": rule_id_value,
        "TopicArn": topic_arn,
        "Events": list(OUR_EVENTS),
        "Filter": {
            "Key": {
                "FilterRules": [
                    {"Name": "prefix", "Value": key_prefix},
                    {"Name": "suffix", "Value": LOG_SUFFIX},
                ]
            }
        },
    }


def rules(config: Config) -> Iterator[dict[str, Any]]:
    """Every rule of the configuration: topic, then queue, then Lambda function rules."""
    for key, _, _ in _LISTS:
        yield from config.get(key, [])


def list_key_of(rule: dict[str, Any]) -> str:
    """The configuration list a rule belongs in, told by its destination field."""
    return next((key for key, arn_field, _ in _LISTS if arn_field in rule), "LambdaFunctionConfigurations")


def _without(config: Config, ids: set[str]) -> Config:
    result: Config = {}
    for key, value in config.items():
        if key in _LIST_KEYS:
            kept = [r for r in value if r.get("Id") not in ids]
            if kept:
                result[key] = kept
        else:
            result[key] = value
    return result


def merge(config: Config, rule: dict[str, Any], replace_ids: Iterable[str]) -> Config:
    """The configuration with rules `replace_ids` removed and our rule added; the rest untouched."""
    result = _without(config, {*replace_ids, rule["Id"]})
    result["TopicConfigurations"] = [*result.get("TopicConfigurations", []), rule]
    return result


def remove(config: Config, ids: Iterable[str]) -> Config:
    """The configuration without the given rule ids."""
    return _without(config, set(ids))


def has_rule(config: Config, rule_id_value: str) -> bool:
    """Whether a rule with this id is present."""
    return any(r.get("Id") == rule_id_value for r in rules(config))


def read(s3: S3Client, bucket: str) -> Config:
    """The current configuration without response metadata."""
    answer: dict[str, Any] = dict(s3.get_bucket_notification_configuration(Bucket=bucket))
    answer.pop("ResponseMetadata", None)
    return answer


def write(s3: S3Client, bucket: str, config: Config, *, validate: bool) -> None:
    """Replace the whole configuration; with `validate`, S3 first sends every destination a test message."""
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration=config,  # type: ignore[arg-type]
        SkipDestinationValidation=not validate,
    )


@dataclass(frozen=True, slots=True)
class DestinationFailure:
    """One destination S3 could not validate, and why."""

    destination: str
    problem: str


def destination_failures(exc: ClientError) -> list[DestinationFailure] | None:
    """The destinations S3 refused, in its order; None when the error is not a validation failure."""
    error = exc.response.get("Error", {})
    if (
        error_code(exc) != "InvalidArgument"
        or _VALIDATION_MESSAGE not in str(error.get("Message", "")).lower()
    ):
        return None
    failures = []
    n = 1
    while f"ArgumentName{n}" in error:
        name = str(error.get(f"ArgumentName{n}", "")).split(",")[0].strip()
        failures.append(DestinationFailure(name, str(error.get(f"ArgumentValue{n}", ""))))
        n += 1
    return failures


def _describe_failure(config: Config, failure: DestinationFailure) -> str:
    named = [
        f"rule '{show(rule.get('Id', '(no id)'), 120)}' sending to {kind}"
        for list_key, dest_key, kind in _LISTS
        for rule in config.get(list_key, [])
        if rule.get(dest_key) == failure.destination
    ]
    who = " and ".join(named) if named else "destination"
    return f"{who} {show(failure.destination)} ({show(failure.problem, 160)})"


def _foreign_reason(bucket: str, config: Config, others: list[DestinationFailure]) -> str:
    failed = "; ".join(_describe_failure(config, f) for f in others)
    return (
        f"S3 refused to add this stack's notification rule to bucket {show(bucket)} because it could not "
        f"validate another rule's destination: {failed}. S3 checks every destination of the bucket's "
        f"configuration whenever it changes: ask the owner of that rule to restore that destination or "
        f"remove the rule (or fix its permission for s3.amazonaws.com), then retry"
    )


def _own_reason(
    rule: dict[str, Any], failures: list[DestinationFailure], attempts: int, waited: float
) -> str:
    problem = f" ({show(failures[0].problem, 160)})" if failures else " (S3 named no destination)"
    return (
        f"S3 could not validate this stack's rule '{show(rule['Id'])}' sending to topic "
        f"{show(rule['TopicArn'])}{problem} in {attempts} attempts over {waited:.0f} s, although the topic's "
        f"policy lets s3.amazonaws.com publish from this bucket: the policy may still be propagating, so "
        f"retry; if it keeps failing, look for an SCP or a change to the topic's policy that denies "
        f"SNS:Publish to s3.amazonaws.com"
    )


def write_adding(s3: S3Client, bucket: str, config: Config, rule: dict[str, Any], deadline: Deadline) -> None:
    """Write a configuration that adds `rule`, validated; retried while only our own topic is refused."""
    waited = 0.0
    for attempt, delay in enumerate((*VALIDATION_RETRY_DELAYS, None), start=1):
        try:
            write(s3, bucket, config, validate=True)
            return
        except ClientError as exc:
            failures = destination_failures(exc)
            if failures is None:
                raise
            others = [f for f in failures if f.destination != rule["TopicArn"]]
            if others:
                raise PreconditionError(_foreign_reason(bucket, config, others)) from exc
            if delay is None or deadline.remaining() - delay < deadline.reserve_seconds:
                raise PreconditionError(_own_reason(rule, failures, attempt, waited)) from exc
            log_event(logger, "own_topic_not_validated_yet", logging.WARNING, attempt=attempt, retry_in=delay)
            RETRY_SLEEP(delay)
            waited += delay


def _document(bucket: str) -> str:
    return f"the notification configuration of bucket {show(bucket)}"


def add_rule(
    s3: S3Client,
    bucket: str,
    rule: dict[str, Any],
    replace_ids: Iterable[str],
    deadline: Deadline,
    *,
    only_if_missing: bool = False,
    before_first_write: Callable[[], object] | None = None,
) -> bool:
    """Merge our rule in (replacing rules `replace_ids`), validated; False when it was already there.

    With `only_if_missing`, a configuration that has our rule Id and none of `replace_ids` is left as it is.
    """
    replace = set(replace_ids)
    stale = replace - {rule["Id"]}

    def holds(current: Config) -> bool:
        return has_rule(current, rule["Id"]) and not any(has_rule(current, i) for i in stale)

    def merged(current: Config) -> Config:
        return current if only_if_missing and holds(current) else merge(current, rule, replace)

    return merge_write(
        read=lambda: read(s3, bucket),
        merge=merged,
        holds=holds,
        write=lambda config: write_adding(s3, bucket, config, rule, deadline),
        document=_document(bucket),
        operation="PutBucketNotificationConfiguration",
        before_first_write=before_first_write,
    )


def remove_rules(s3: S3Client, bucket: str, ids: Iterable[str]) -> bool:
    """Remove rules by id, without destination validation; False when none was there."""
    drop = set(ids)

    def gone(config: Config) -> bool:
        return not any(has_rule(config, i) for i in drop)

    def without(config: Config) -> Config:
        return config if gone(config) else remove(config, drop)

    return merge_write(
        read=lambda: read(s3, bucket),
        merge=without,
        holds=gone,
        write=lambda config: write(s3, bucket, config, validate=False),
        document=_document(bucket),
        operation="PutBucketNotificationConfiguration",
    )


def restore_rules(
    s3: S3Client,
    bucket: str,
    *,
    before: Config,
    rule: dict[str, Any],
    replace_ids: Iterable[str],
    displaced: list[dict[str, Any]],
) -> bool:
    """Undo add_rule: the exact previous configuration if nobody changed it since, else our rule out and
    the rules it displaced back; without destination validation."""
    written = merge(before, rule, replace_ids)
    displaced_ids = {str(r.get("Id")) for r in displaced}

    def restored(config: Config) -> bool:
        return not has_rule(config, rule["Id"]) and all(has_rule(config, i) for i in displaced_ids)

    def restore(config: Config) -> Config:
        if restored(config):
            return config
        if config == written:
            return before
        result = remove(config, {rule["Id"], *displaced_ids})
        for item in displaced:
            key = list_key_of(item)
            result[key] = [*result.get(key, []), item]
        return result

    return merge_write(
        read=lambda: read(s3, bucket),
        merge=restore,
        holds=restored,
        write=lambda config: write(s3, bucket, config, validate=False),
        document=_document(bucket),
        operation="PutBucketNotificationConfiguration",
    )
