"""Names of everything the provisioner creates or adds, all derived from one generation token.

Delete finds exactly what one Create made (and nothing of anyone else's) by recomputing these names
from the generation stored in the physical id.
"""

from __future__ import annotations

import hashlib
import re

PROJECT = "alb-log-onboarding"
STACK_TAG_KEY = "alb-log-onboarding:stack-id"
# With STACK_TAG_KEY on a load balancer: the generation whose access-log settings it carries.
LOG_OWNER_GEN_TAG_KEY = "alb-log-onboarding:generation"
LOG_SUFFIX = ".log.gz"
_TOPIC_MAX = 256


def make_gen(stack_id: str, logical_id: str, request_id: str) -> str:
    """8 hex characters unique per Create request (and stable if the same request is retried)."""
    digest = hashlib.sha256(f"{stack_id}\n{logical_id}\n{request_id}".encode()).hexdigest()
    return digest[:8]


def is_gen(value: str) -> bool:
    """True for a well-formed generation token."""
    return len(value) == 8 and all(c in "0123456789abcdef" for c in value)


def delivery_sid(gen: str) -> str:
    """Bucket policy statement letting the ELB service principal write log files."""
    return f"AlbLogDelivery{gen}"


def delivery_account_sid(gen: str) -> str:
    """Bucket policy statement letting the regional ELB account write log files (older regions)."""
    return f"AlbLogDeliveryAccount{gen}"


def read_objects_sid(gen: str) -> str:
    """Bucket policy statement letting ReaderPrincipalArn read the log files."""
    return f"AlbLogRead{gen}"


def read_list_sid(gen: str) -> str:
    """Bucket policy statement letting ReaderPrincipalArn list the log prefix."""
    return f"AlbLogReadList{gen}"


def tls_sid(gen: str) -> str:
    """Bucket policy statement denying plain-HTTP access (only on buckets we create)."""
    return f"AlbLogTls{gen}"


def policy_sids(gen: str) -> frozenset[str]:
    """Every bucket policy Sid one generation may own."""
    return frozenset(
        {
            delivery_sid(gen),
            delivery_account_sid(gen),
            read_objects_sid(gen),
            read_list_sid(gen),
            tls_sid(gen),
        }
    )


def rule_id(gen: str) -> str:
    """Id of our bucket notification rule."""
    return f"{PROJECT}-{gen}"


_SID_GEN = re.compile(r"^AlbLog(?:Delivery|DeliveryAccount|Read|ReadList|Tls)([0-9a-f]{8})$")


def sid_gen(sid: str) -> str | None:
    """The generation of one of our policy Sids, None for anyone else's statement."""
    match = _SID_GEN.match(sid)
    return match.group(1) if match else None


def rule_gen(rule_id_value: str) -> str | None:
    """The generation of one of our rule ids, None for anyone else's rule."""
    prefix = f"{PROJECT}-"
    if rule_id_value.startswith(prefix) and is_gen(rule_id_value[len(prefix) :]):
        return rule_id_value[len(prefix) :]
    return None


def permission_sid(gen: str) -> str:
    """StatementId of the permission that lets our topic invoke the forwarder."""
    return f"{PROJECT}-{gen}"


def subscription_filter_name(gen: str) -> str:
    """Name of our subscription filter on each log group in LogGroupNames."""
    return f"{PROJECT}-{gen}"


def log_group_permission_sid(gen: str, log_group: str) -> str:
    """StatementId letting one log group invoke the forwarder.

    Statement ids allow only letters, digits, '-' and '_', which log group names ('/', '.', '#') exceed:
    the name is hashed.
    """
    digest = hashlib.sha256(log_group.encode()).hexdigest()[:16]
    return f"{PROJECT}-{gen}-logs-{digest}"


EXPIRY_RULE_ID = f"{PROJECT}-expiry"  # one per bucket: the bucket belongs to the stack, not to one generation


def topic_name(stack: str, gen: str) -> str:
    """`<stack-name>-alb-logs-<gen>`; the role may manage topics named `<stack-name>-alb-logs-*`."""
    suffix = f"-alb-logs-{gen}"
    return stack[: _TOPIC_MAX - len(suffix)] + suffix


def default_bucket_name(account: str, region: str, stack_id: str) -> str:
    """`alb-logs-<account>-<region>-<8 hex of stack id>`: valid, unique per stack, at most 63 characters."""
    digest = hashlib.sha256(stack_id.encode()).hexdigest()[:8]
    return f"alb-logs-{account}-{region}-{digest}"[:63].rstrip("-")


def log_key_prefix(prefix: str, account: str) -> str:
    """Where ALB writes this account's files: `<prefix>/AWSLogs/<account>/` (or `AWSLogs/<account>/`)."""
    return f"{prefix}/AWSLogs/{account}/" if prefix else f"AWSLogs/{account}/"
