"""Publish a release: upload the Lambda zips and the template to one artifact bucket per region.

Layout (what the template's CodeBucketPrefix / CodeVersion parameters point at):
    s3://<bucket-prefix>-<region>/alb-log-onboarding/<version>/provisioner.zip
    s3://<bucket-prefix>-<region>/alb-log-onboarding/<version>/forwarder.zip
    s3://<bucket-prefix>-<region>/alb-log-onboarding/<version>/onboarding.yaml
Lambda only loads code from a bucket in the function's own region, hence one bucket per region. The
uploaded template's CodeVersion and CodeBucketPrefix defaults are set to this release, so a stack created
from its URL runs exactly the code published next to it. Released versions are immutable unless --force.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

# The scripts folder is not a package: make its siblings importable however this file is loaded.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_lambdas import (
    DEFAULT_DIST,
    DEFAULT_TEMPLATE,
    LAMBDA_FUNCTION_TYPES,
    PACKAGES,
    BuildError,
    parse_template,
)
from quick_create_link import (
    DEFAULT_STACK_NAME,
    KEY_ROOT,
    TEMPLATE_FILE,
    LinkError,
    artifact_key,
    check_version,
    code_bucket,
    partition_for,
    quick_create_link,
    template_url,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ZIP_CONTENT_TYPE = "application/zip"
YAML_CONTENT_TYPE = "application/yaml"  # RFC 9512
VERSION_PARAMETER = "CodeVersion"
BUCKET_PREFIX_PARAMETER = "CodeBucketPrefix"
REQUIRED_PARAMETERS = ("LoadBalancerArn", VERSION_PARAMETER, BUCKET_PREFIX_PARAMETER)
READ_SID = "AlbLogOnboardingReleaseRead"
TLS_ONLY_SID = "AlbLogOnboardingTlsOnly"


class PublishError(Exception):
    """Publishing cannot go ahead or did not complete; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Artifact:
    """One file of the release, in memory (a few hundred KB at most)."""

    name: str
    body: bytes
    content_type: str

    @property
    def sha256_hex(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def sha256_b64(self) -> str:
        return base64.b64encode(hashlib.sha256(self.body).digest()).decode("ascii")


@dataclass(frozen=True, slots=True)
class RegionPlan:
    """What publishing to one region will do, decided before anything is written."""

    region: str
    bucket: str
    create_bucket: bool
    existing_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReadAccess:
    """Who may download released files: the bucket owner only, everyone, or one AWS Organization."""

    public: bool = False
    org_id: str | None = None

    @property
    def granted(self) -> bool:
        return self.public or self.org_id is not None


# --- the template -----------------------------------------------------------------------------------

_DEFAULT_LINE = re.compile(
    r"^(?P<indent>[ \t]+)Default:[ \t]*"
    r"(?P<value>'(?:[^']|'')*'|\"(?:[^\"\\]|\\.)*\"|[^#\r\n]*?)"
    r"(?P<comment>[ \t]+#[^\r\n]*)?(?P<eol>\r?\n?)$"
)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _set_parameter_default_text(text: str, parameter: str, value: str) -> str:
    """Rewrite the Default line of one top-level parameter, leaving every other byte as it was."""
    lines = text.splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if re.match(r"^Parameters:[ \t]*(#.*)?\r?\n?$", line))
    except StopIteration:
        raise PublishError("the template has no top-level Parameters section") from None
    param_indent: int | None = None
    found: int | None = None
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if not _is_content(line):
            continue
        if _indent(line) == 0:
            break
        param_indent = _indent(line) if param_indent is None else param_indent
        if _indent(line) == param_indent and re.match(
            rf"^ *{re.escape(parameter)}:[ \t]*(#.*)?\r?\n?$", line
        ):
            found = i
            break
    if found is None or param_indent is None:
        raise PublishError(f"the template's Parameters has no block-style {parameter} entry to rewrite")
    child_indent: int | None = None
    for i in range(found + 1, len(lines)):
        line = lines[i]
        if not _is_content(line):
            continue
        if _indent(line) <= param_indent:
            break
        child_indent = _indent(line) if child_indent is None else child_indent
        match = _DEFAULT_LINE.match(line)
        if match and _indent(line) == child_indent:
            quoted = "'" + value.replace("'", "''") + "'"
            lines[i] = f"{match['indent']}Default: {quoted}{match['comment'] or ''}{match['eol']}"
            return "".join(lines)
    raise PublishError(f"the template's {parameter} parameter has no Default line to rewrite")


def _check_parameter_value(parameters: Mapping[str, Any], name: str, value: str) -> None:
    """Refuse a value CloudFormation itself would reject for this parameter."""
    definition = parameters.get(name) or {}
    pattern = definition.get("AllowedPattern")
    if isinstance(pattern, str) and not re.search(pattern, value):
        raise PublishError(f"{value!r} does not match the template's {name} AllowedPattern {pattern}")
    max_length = definition.get("MaxLength")
    if max_length is not None and len(value) > int(max_length):
        raise PublishError(f"{value!r} is longer than the template's {name} MaxLength {max_length}")


def render_template(text: str, *, version: str, bucket_prefix: str) -> str:
    """The template as published: CodeVersion and CodeBucketPrefix defaults set to this release.

    A targeted text substitution keeps comments and layout; the result is parsed again and must equal the
    original with exactly those two defaults changed, or publishing stops.
    """
    original = parse_template(text)
    parameters = original.get("Parameters") or {}
    missing = [name for name in REQUIRED_PARAMETERS if name not in parameters]
    if missing:
        raise PublishError(f"the template lacks the parameter(s) {', '.join(missing)}")
    if str(parameters["LoadBalancerArn"].get("NoEcho", "false")).lower() == "true":
        raise PublishError("LoadBalancerArn is NoEcho: the quick-create link could not prefill it")
    new_defaults = {VERSION_PARAMETER: version, BUCKET_PREFIX_PARAMETER: bucket_prefix}
    rendered = text
    for name, value in new_defaults.items():
        _check_parameter_value(parameters, name, value)
        rendered = _set_parameter_default_text(rendered, name, value)
    expected = json.loads(json.dumps(original, default=str))
    for name, value in new_defaults.items():
        expected["Parameters"][name]["Default"] = value
    if json.loads(json.dumps(parse_template(rendered), default=str)) != expected:
        raise PublishError("rewriting the template's defaults changed more than the defaults; not publishing")
    return rendered


def _evaluate(value: Any, variables: Mapping[str, str]) -> str:
    """Evaluate the few intrinsics a code location uses (literal, Ref, Sub, Join) against known values."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (function, argument), *_ = value.items()
        if function == "Ref" and argument in variables:
            return variables[argument]
        if function == "Fn::Sub":
            template, local = (argument, {}) if isinstance(argument, str) else argument
            scope = {**variables, **{k: _evaluate(v, variables) for k, v in local.items()}}

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name.startswith("!"):
                    return "${" + name[1:] + "}"
                if name not in scope:
                    raise PublishError(f"cannot evaluate ${{{name}}} in the template's code location")
                return scope[name]

            return re.sub(r"\$\{([^}]+)\}", substitute, template)
        if function == "Fn::Join":
            delimiter, parts = argument
            return str(delimiter).join(_evaluate(part, variables) for part in parts)
    raise PublishError(f"cannot evaluate the template's code location {value!r}")


def check_code_locations(rendered: str, region: str) -> None:
    """Every function in the published template must load its zip from exactly where we upload it."""
    template = parse_template(rendered)
    parameters = template.get("Parameters") or {}
    partition = partition_for(region)
    variables = {name: str(p["Default"]) for name, p in parameters.items() if "Default" in p}
    variables |= {"AWS::Region": region, "AWS::Partition": partition.name, "AWS::URLSuffix": "amazonaws.com"}
    bucket = code_bucket(variables[BUCKET_PREFIX_PARAMETER], region)
    referenced = set()
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") not in LAMBDA_FUNCTION_TYPES:
            continue
        properties = resource.get("Properties") or {}
        package = str(properties.get("Handler", "")).split(".", 1)[0]
        if package not in PACKAGES:
            continue
        code = properties.get("Code") or {}
        actual = (_evaluate(code.get("S3Bucket"), variables), _evaluate(code.get("S3Key"), variables))
        wanted = (bucket, artifact_key(variables[VERSION_PARAMETER], f"{package}.zip"))
        if actual != wanted:
            raise PublishError(
                f"{logical_id} loads its code from s3://{actual[0]}/{actual[1]} but publishing uploads it "
                f"to s3://{wanted[0]}/{wanted[1]}: align the template's Code with the publish layout"
            )
        referenced.add(package)
    if referenced != set(PACKAGES):
        raise PublishError(
            f"the template has functions for {sorted(referenced)} but the release ships {sorted(PACKAGES)}"
        )


def load_artifacts(dist: Path, template_path: Path, *, version: str, bucket_prefix: str) -> list[Artifact]:
    """Read the built zips and the rendered template; the template comes last so it appears last."""
    artifacts = []
    for package in PACKAGES:
        path = dist / f"{package}.zip"
        if not path.is_file():
            raise PublishError(f"{path} is missing: run `python scripts/release/build_lambdas.py` first")
        artifacts.append(Artifact(path.name, path.read_bytes(), ZIP_CONTENT_TYPE))
    try:
        text = template_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PublishError(f"cannot read the template {template_path}: {exc.strerror}") from exc
    rendered = render_template(text, version=version, bucket_prefix=bucket_prefix)
    artifacts.append(Artifact(TEMPLATE_FILE, rendered.encode("utf-8"), YAML_CONTENT_TYPE))
    return artifacts


# --- S3 -----------------------------------------------------------------------------------------------


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def plan_region(
    s3: S3Client, region: str, bucket: str, version: str, *, account: str, create_buckets: bool, force: bool
) -> tuple[RegionPlan, list[str]]:
    """Inspect one region's bucket without changing anything; returns the plan and any blocking problems."""
    problems: list[str] = []
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account)
    except ClientError as exc:
        code = _error_code(exc)
        if code in ("404", "NoSuchBucket"):
            if not create_buckets:
                problems.append(
                    f"{region}: bucket {bucket} does not exist; pass --create-buckets or create it "
                    f"in {region}"
                )
            return RegionPlan(region, bucket, create_buckets, ()), problems
        if code in ("403", "AccessDenied"):
            problems.append(
                f"{region}: bucket {bucket} exists but is not accessible to account {account} "
                "(owned by another account, or no s3:ListBucket permission); choose another --bucket-prefix"
            )
            return RegionPlan(region, bucket, False, ()), problems
        raise
    location = s3.get_bucket_location(Bucket=bucket, ExpectedBucketOwner=account).get("LocationConstraint")
    # S3 reports us-east-1 as no constraint and eu-west-1 as the legacy "EU".
    actual_region = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)
    if actual_region != region:
        problems.append(
            f"{region}: bucket {bucket} is in {actual_region}; Lambda only loads code from a bucket in the "
            "stack's own region"
        )
    listing = s3.list_objects_v2(
        Bucket=bucket, Prefix=f"{KEY_ROOT}/{version}/", ExpectedBucketOwner=account, MaxKeys=100
    )
    existing = tuple(item["Key"] for item in listing.get("Contents", []))
    if existing and not force:
        problems.append(
            f"{region}: version {version} is already published in s3://{bucket}/{KEY_ROOT}/{version}/ "
            f"({len(existing)} object(s)); released versions are immutable: publish a new version, or pass "
            "--force to overwrite"
        )
    return RegionPlan(region, bucket, False, existing), problems


def _merge_statements(s3: S3Client, bucket: str, account: str, statements: list[dict[str, Any]]) -> None:
    """Put our statements (by Sid) into the bucket policy, keeping every statement we did not write."""
    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket, ExpectedBucketOwner=account)["Policy"])
    except ClientError as exc:
        if _error_code(exc) != "NoSuchBucketPolicy":
            raise
        policy = {"Version": "2012-10-17", "Statement": []}
    ours = {statement["Sid"] for statement in statements}
    kept = [s for s in policy.get("Statement", []) if s.get("Sid") not in ours]
    policy["Statement"] = kept + statements
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy), ExpectedBucketOwner=account)


def create_bucket(
    s3: S3Client, region: str, bucket: str, *, account: str, read: ReadAccess, tls_only: bool = True
) -> None:
    """A private, SSE-S3 encrypted, TLS-only bucket in region (public bucket policy allowed only if asked).

    tls_only=False leaves out the statement that denies plain-HTTP requests: only for a local test
    endpoint reached over http://, which that statement would lock out.
    """
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
    s3.put_bucket_ownership_controls(
        Bucket=bucket,
        OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        ExpectedBucketOwner=account,
    )
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": not read.public,
            "RestrictPublicBuckets": not read.public,
        },
        ExpectedBucketOwner=account,
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
        ExpectedBucketOwner=account,
    )
    if not tls_only:
        return
    arn = f"arn:{partition_for(region).name}:s3:::{bucket}"
    deny_plain_http = {
        "Sid": TLS_ONLY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    _merge_statements(s3, bucket, account, [deny_plain_http])


def grant_read(s3: S3Client, region: str, bucket: str, *, account: str, read: ReadAccess) -> str:
    """Let other accounts fetch the released files (CloudFormation reads the template, Lambda the zips)."""
    statement: dict[str, Any] = {
        "Sid": READ_SID,
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:{partition_for(region).name}:s3:::{bucket}/{KEY_ROOT}/*",
    }
    if read.org_id:
        statement["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": read.org_id}}
    if read.public:
        # A public policy is refused while BlockPublicPolicy is on; keep ACLs blocked either way.
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": False,
                "RestrictPublicBuckets": False,
            },
            ExpectedBucketOwner=account,
        )
    _merge_statements(s3, bucket, account, [statement])
    return "anyone" if read.public else f"accounts of organization {read.org_id}"


def upload(s3: S3Client, bucket: str, key: str, artifact: Artifact, *, account: str) -> None:
    """Upload one file with its SHA-256 checksum and check that S3 stored exactly that."""
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=artifact.body,
        ContentType=artifact.content_type,
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=artifact.sha256_b64,
        ExpectedBucketOwner=account,
    )
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED", ExpectedBucketOwner=account)
    stored = head.get("ChecksumSHA256")
    if stored != artifact.sha256_b64 or head.get("ContentLength") != len(artifact.body):
        raise PublishError(
            f"s3://{bucket}/{key} does not hold what was uploaded (sha256 {stored!r}, expected "
            f"{artifact.sha256_b64!r}); re-run with --force"
        )


# --- the whole release --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Published:
    region: str
    bucket: str
    template_url: str
    link: str


def parse_regions(values: Sequence[str]) -> list[str]:
    """Regions from repeated and/or comma-separated values, in order, without duplicates."""
    regions: list[str] = []
    for value in values:
        for region in filter(None, (part.strip() for part in value.split(","))):
            if region not in regions:
                regions.append(region)
    if not regions:
        raise PublishError("no region given: pass --regions, e.g. --regions eu-west-1,us-east-1")
    return regions


def publish(
    s3_for: Callable[[str], S3Client],
    account: str,
    *,
    regions: Sequence[str],
    version: str,
    bucket_prefix: str,
    dist: Path = DEFAULT_DIST,
    template: Path = DEFAULT_TEMPLATE,
    create_buckets: bool = False,
    force: bool = False,
    read: ReadAccess | None = None,
    tls_only: bool = True,
    stack_name: str = DEFAULT_STACK_NAME,
    out: Callable[[str], None] = print,
) -> list[Published]:
    """Check every region first, then create buckets, upload (zips first, template last) and verify."""
    read = read or ReadAccess()
    check_version(version)
    buckets = {region: code_bucket(bucket_prefix, region) for region in regions}  # validates regions too
    artifacts = load_artifacts(dist, template, version=version, bucket_prefix=bucket_prefix)
    rendered = artifacts[-1].body.decode("utf-8")
    for region in regions:
        check_code_locations(rendered, region)

    out(f"Publishing {version} to {len(regions)} region(s): {', '.join(regions)}")
    for artifact in artifacts:
        out(f"  {artifact.name:<16} {len(artifact.body):>9} bytes  sha256 {artifact.sha256_hex}")

    plans: list[RegionPlan] = []
    problems: list[str] = []
    for region in regions:
        plan, found = plan_region(
            s3_for(region),
            region,
            buckets[region],
            version,
            account=account,
            create_buckets=create_buckets,
            force=force,
        )
        plans.append(plan)
        problems += found
    if problems:
        raise PublishError("nothing was uploaded:\n  " + "\n  ".join(problems))

    published = []
    for plan in plans:
        s3 = s3_for(plan.region)
        tag = f"[{plan.region}]"
        if plan.create_bucket:
            create_bucket(s3, plan.region, plan.bucket, account=account, read=read, tls_only=tls_only)
            tls = "TLS only" if tls_only else "plain-http endpoint, so no TLS-only policy"
            out(f"{tag} created bucket {plan.bucket} (SSE-S3, {tls}, ACLs disabled, public access blocked)")
        if read.granted:
            who = grant_read(s3, plan.region, plan.bucket, account=account, read=read)
            out(f"{tag} bucket policy lets {who} read s3://{plan.bucket}/{KEY_ROOT}/*")
        if plan.existing_keys:
            out(f"{tag} --force: overwriting {len(plan.existing_keys)} object(s) of version {version}")
        for artifact in artifacts:
            key = artifact_key(version, artifact.name)
            upload(s3, plan.bucket, key, artifact, account=account)
            out(f"{tag} uploaded s3://{plan.bucket}/{key} ({len(artifact.body)} bytes, sha256 verified)")
        published.append(
            Published(
                region=plan.region,
                bucket=plan.bucket,
                template_url=template_url(plan.region, version, bucket_prefix=bucket_prefix),
                link=quick_create_link(
                    plan.region, version, bucket_prefix=bucket_prefix, stack_name=stack_name
                ),
            )
        )

    out("")
    out(f"Published {version}:")
    for item in published:
        out(f"  {item.region}")
        out(f"    template:     {item.template_url}")
        out(f"    quick-create: {item.link}")
    if not read.granted:
        out(
            "Only this account can read these files; to hand the link to other accounts, re-run with "
            "--public-read or --read-org-id (and --force)."
        )
    return published


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="publish.py",
        description=(
            "Upload dist/provisioner.zip, dist/forwarder.zip and templates/onboarding.yaml to "
            "s3://<bucket-prefix>-<region>/alb-log-onboarding/<version>/ in every region given (Lambda "
            "loads code only from a bucket in its own region). The uploaded template's CodeVersion and "
            "CodeBucketPrefix defaults are set to this release. Every region is checked before anything "
            "is written; an existing version is never overwritten without --force. Prints a quick-create "
            "link per region at the end. Works against any S3 endpoint (--endpoint-url or "
            "AWS_ENDPOINT_URL)."
        ),
        epilog="Exit status: 0 published, 1 error (nothing or not everything was published), 2 usage error.",
    )
    parser.add_argument("--version", required=True, help="release version, e.g. 0.2.0")
    parser.add_argument("--bucket-prefix", required=True, help="buckets are named <prefix>-<region>")
    parser.add_argument(
        "--regions",
        action="append",
        required=True,
        metavar="REGION[,REGION...]",
        help="regions to publish to; comma-separated and/or repeated",
    )
    parser.add_argument("--dist", type=Path, default=DEFAULT_DIST, help="folder with the built zips")
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="template to publish")
    parser.add_argument("--create-buckets", action="store_true", help="create missing buckets")
    parser.add_argument("--force", action="store_true", help="overwrite a version that is already published")
    readers = parser.add_mutually_exclusive_group()
    readers.add_argument(
        "--public-read",
        action="store_true",
        help="let anyone download the released files (needed for a link used by any AWS account)",
    )
    readers.add_argument(
        "--read-org-id",
        metavar="o-xxxxxxxxxx",
        help="let the accounts of this AWS Organization download them",
    )
    parser.add_argument("--stack-name", default=DEFAULT_STACK_NAME, help="stack name in the printed links")
    parser.add_argument("--endpoint-url", help="S3/STS endpoint (default: AWS, or AWS_ENDPOINT_URL)")
    parser.add_argument("--profile", help="AWS profile to use")
    args = parser.parse_args(argv)
    if args.read_org_id and not re.fullmatch(r"o-[a-z0-9]{10,32}", args.read_org_id):
        parser.error(f"--read-org-id {args.read_org_id!r} is not an organization id (o-xxxxxxxxxx)")

    try:
        regions = parse_regions(args.regions)
        session = boto3.session.Session(profile_name=args.profile)
        endpoint = args.endpoint_url or None  # None lets boto3 honour AWS_ENDPOINT_URL
        config = Config(retries={"max_attempts": 5, "mode": "standard"})
        clients: dict[str, S3Client] = {}

        def s3_for(region: str) -> S3Client:
            if region not in clients:
                clients[region] = session.client(
                    "s3", region_name=region, endpoint_url=endpoint, config=config
                )
            return clients[region]

        configured = (
            args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        )
        sts = session.client("sts", region_name=regions[0], endpoint_url=endpoint, config=config)
        account = sts.get_caller_identity()["Account"]
        publish(
            s3_for,
            account,
            regions=regions,
            version=args.version,
            bucket_prefix=args.bucket_prefix,
            dist=args.dist,
            template=args.template,
            create_buckets=args.create_buckets,
            force=args.force,
            read=ReadAccess(public=args.public_read, org_id=args.read_org_id),
            tls_only=not (configured or "").lower().startswith("http://"),
            stack_name=args.stack_name,
        )
    except (PublishError, LinkError, BuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except NoCredentialsError:
        print(
            "error: no AWS credentials found: configure a profile (--profile) or the AWS_* variables",
            file=sys.stderr,
        )
        return 1
    except ClientError as exc:
        operation = exc.operation_name
        message = exc.response.get("Error", {}).get("Message", str(exc))
        print(
            f"error: AWS refused {operation}: {message}. Files uploaded before this error stay in place; "
            "once the cause is fixed, re-run with --force.",
            file=sys.stderr,
        )
        return 1
    except BotoCoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
