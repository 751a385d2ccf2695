"""Print the CloudFormation console quick-create link for a published template version.

The link opens the console's "Quick create stack" page with the template, stack name and (optionally) the
load balancer ARN filled in; the user only ticks the IAM acknowledgement and clicks Create. Parameters
marked NoEcho cannot be prefilled this way, so the link carries only the load balancer ARN.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

# Where publish.py puts every release: s3://<bucket-prefix>-<region>/<KEY_ROOT>/<version>/<file>.
KEY_ROOT = "alb-log-onboarding"
TEMPLATE_FILE = "onboarding.yaml"
DEFAULT_STACK_NAME = "alb-log-onboarding"

_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_ISOLATED_REGION_RE = re.compile(r"^[a-z]{2}-iso[a-z]*-")
# CloudFormation stack names: a letter, then letters, digits and hyphens, 128 characters at most.
_STACK_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
# Versions become one S3 key segment: no slashes, nothing that needs quoting in a key.
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$")
# Bucket names without dots: a dotted name breaks the certificate of the virtual-hosted HTTPS URL.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_ALB_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):elasticloadbalancing:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    # Name and id as the template's LoadBalancerArn AllowedPattern has them, so a link never prefills
    # a value the console would then refuse.
    r"loadbalancer/app/[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?/[0-9a-f]{16}$"
)


class LinkError(ValueError):
    """An input cannot make a working quick-create link; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Partition:
    """Console and S3 host names of an AWS partition."""

    name: str
    console_host: str
    s3_domain: str


def partition_for(region: str) -> Partition:
    """The partition a region belongs to, with its console host and S3 domain."""
    if not _REGION_RE.match(region):
        raise LinkError(f"{region!r} is not an AWS region name (for example eu-west-1)")
    if _ISOLATED_REGION_RE.match(region):
        raise LinkError(f"{region}: the isolated (ISO) partitions have no public console; not supported")
    if region.startswith("cn-"):
        # China: the console and S3 live under amazonaws.cn / amazonaws.com.cn.
        return Partition("aws-cn", "console.amazonaws.cn", "amazonaws.com.cn")
    if region.startswith("us-gov-"):
        return Partition("aws-us-gov", "console.amazonaws-us-gov.com", "amazonaws.com")
    return Partition("aws", f"{region}.console.aws.amazon.com", "amazonaws.com")


def code_bucket(bucket_prefix: str, region: str) -> str:
    """The per-region artifact bucket: Lambda only loads code from a bucket in the function's region."""
    bucket = f"{bucket_prefix}-{region}"
    if not _BUCKET_RE.match(bucket):
        raise LinkError(
            f"bucket name {bucket!r} (from --bucket-prefix {bucket_prefix!r}) is not a valid S3 bucket name "
            "without dots: use 3-63 lowercase letters, digits and hyphens"
        )
    return bucket


def check_version(version: str) -> str:
    if not VERSION_RE.match(version):
        raise LinkError(
            f"version {version!r} must start with a letter or digit and use only letters, digits, '.', '_' "
            "and '-' (64 characters at most)"
        )
    return version


def artifact_key(version: str, file_name: str) -> str:
    """The S3 key of one released file."""
    return f"{KEY_ROOT}/{check_version(version)}/{file_name}"


def template_url(region: str, version: str, *, bucket_prefix: str) -> str:
    """The regional virtual-hosted HTTPS URL of the published template."""
    partition = partition_for(region)
    bucket = code_bucket(bucket_prefix, region)
    key = artifact_key(version, TEMPLATE_FILE)
    return f"https://{bucket}.s3.{region}.{partition.s3_domain}/{key}"


def check_load_balancer_arn(arn: str, region: str) -> str:
    """The ARN without surrounding whitespace (the provisioner strips it too); reject what the stack would
    reject later: not an ALB ARN, or one from another region/partition."""
    arn = arn.strip()
    match = _ALB_ARN_RE.match(arn)
    if not match:
        raise LinkError(
            f"{arn!r} is not an Application Load Balancer ARN "
            "(arn:<partition>:elasticloadbalancing:<region>:<account>:loadbalancer/app/<name>/<id>)"
        )
    if match["region"] != region:
        raise LinkError(
            f"the load balancer is in {match['region']} but the link is for {region}: the stack must be "
            f"created in the load balancer's region (use --region {match['region']})"
        )
    expected = partition_for(region).name
    if match["partition"] != expected:
        raise LinkError(f"the ARN's partition {match['partition']!r} does not match {region} ({expected})")
    return arn


def quick_create_link(
    region: str,
    version: str,
    *,
    bucket_prefix: str,
    load_balancer_arn: str | None = None,
    stack_name: str = DEFAULT_STACK_NAME,
) -> str:
    """The console link that opens Quick create stack for the published template in region."""
    partition = partition_for(region)
    if not _STACK_NAME_RE.match(stack_name):
        raise LinkError(
            f"stack name {stack_name!r} must start with a letter and use only letters, digits and hyphens "
            "(128 characters at most)"
        )
    url = template_url(region, version, bucket_prefix=bucket_prefix)
    # Every value is percent-encoded completely (safe=""): the console reads these from the URL fragment.
    fragment = [f"templateURL={quote(url, safe='')}", f"stackName={quote(stack_name, safe='')}"]
    if load_balancer_arn:
        arn = check_load_balancer_arn(load_balancer_arn, region)
        fragment.append(f"param_LoadBalancerArn={quote(arn, safe='')}")
    return (
        f"https://{partition.console_host}/cloudformation/home?region={quote(region, safe='')}"
        f"#/stacks/quickcreate?{'&'.join(fragment)}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="quick_create_link.py",
        description=(
            "Print the CloudFormation console quick-create link for a template published by publish.py "
            "(s3://<bucket-prefix>-<region>/alb-log-onboarding/<version>/onboarding.yaml). Opening it "
            "signed in to the target account shows the stack ready to create, with the load balancer ARN "
            "filled in when given. China and GovCloud regions get their own console and S3 domains."
        ),
        epilog="Exit status: 0 printed, 1 invalid input, 2 usage error.",
    )
    parser.add_argument("--version", required=True, help="published template version, e.g. 0.1.0")
    parser.add_argument(
        "--bucket-prefix", required=True, help="artifact bucket prefix: the bucket is <prefix>-<region>"
    )
    parser.add_argument(
        "--region", help="region of the stack (default: the load balancer ARN's region; required without it)"
    )
    parser.add_argument("--load-balancer-arn", help="prefill the LoadBalancerArn parameter with this ALB ARN")
    parser.add_argument("--stack-name", default=DEFAULT_STACK_NAME, help="default: %(default)s")
    args = parser.parse_args(argv)

    region = args.region
    if region is None:
        match = _ALB_ARN_RE.match((args.load_balancer_arn or "").strip())
        if not match:
            parser.error("--region is required unless --load-balancer-arn gives a valid ALB ARN")
        region = match["region"]
    try:
        link = quick_create_link(
            region,
            args.version,
            bucket_prefix=args.bucket_prefix,
            load_balancer_arn=args.load_balancer_arn,
            stack_name=args.stack_name,
        )
    except LinkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(link)
    return 0


if __name__ == "__main__":
    sys.exit(main())
