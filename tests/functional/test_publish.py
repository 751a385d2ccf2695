"""Publishing against an embedded S3 (moto's threaded server on 127.0.0.1) through publish.main(argv)."""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from script_modules import load_script

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "templates" / "onboarding.yaml"
KEY_ROOT = "alb-log-onboarding"


publish = load_script("release/publish")
qcl = load_script("release/quick_create_link")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    yield f"http://{host}:{port}"
    moto.stop()


@pytest.fixture
def endpoint(server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    urllib.request.urlopen(urllib.request.Request(f"{server}/moto-api/reset", method="POST")).close()
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_STS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    return server


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    folder = tmp_path / "dist"
    folder.mkdir()
    (folder / "provisioner.zip").write_bytes(b"PK provisioner build")
    (folder / "forwarder.zip").write_bytes(b"PK forwarder build")
    return folder


def _s3(endpoint: str, region: str = "us-east-1") -> Any:
    return boto3.client("s3", region_name=region, endpoint_url=endpoint)


def _argv(endpoint: str, dist: Path, *extra: str, version: str = "0.2.0") -> list[str]:
    return [
        "--version",
        version,
        "--bucket-prefix",
        "acme-rel",
        "--dist",
        str(dist),
        "--endpoint-url",
        endpoint,
        *extra,
    ]


def _b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _parameters(text: str) -> dict[str, Any]:
    parsed: dict[str, Any] = publish.parse_template(text)
    return parsed["Parameters"]


def test_publishes_to_each_region_with_the_template_layout(
    endpoint: str, dist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = publish.main(_argv(endpoint, dist, "--regions", "eu-west-1,us-east-1", "--create-buckets"))
    out, err = capsys.readouterr()
    assert code == 0, err

    original = TEMPLATE.read_text(encoding="utf-8")
    for region in ("eu-west-1", "us-east-1"):
        s3 = _s3(endpoint, region)
        bucket = f"acme-rel-{region}"
        location = s3.get_bucket_location(Bucket=bucket)["LocationConstraint"]
        assert (location or "us-east-1") == region
        listing = s3.list_objects_v2(Bucket=bucket)
        assert sorted(o["Key"] for o in listing["Contents"]) == [
            f"{KEY_ROOT}/0.2.0/forwarder.zip",
            f"{KEY_ROOT}/0.2.0/onboarding.yaml",
            f"{KEY_ROOT}/0.2.0/provisioner.zip",
        ]
        for name in ("provisioner.zip", "forwarder.zip"):
            key = f"{KEY_ROOT}/0.2.0/{name}"
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            assert body == (dist / name).read_bytes()
            head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
            assert head["ContentType"] == "application/zip"
            assert head["ChecksumSHA256"] == _b64sha(body)
            assert f"[{region}] uploaded s3://{bucket}/{key} " in out

        key = f"{KEY_ROOT}/0.2.0/onboarding.yaml"
        published = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert head["ContentType"] == "application/yaml"
        assert head["ChecksumSHA256"] == _b64sha(published)
        # The published template runs this release's code: both defaults point at it, nothing else moved.
        text = published.decode()
        parameters = _parameters(text)
        assert parameters["CodeVersion"]["Default"] == "0.2.0"
        assert parameters["CodeBucketPrefix"]["Default"] == "acme-rel"
        changed = [
            line
            for line in difflib.unified_diff(original.splitlines(), text.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        ]
        assert changed == [
            "-    Default: alb-log-onboarding",
            "+    Default: 'acme-rel'",
            "-    Default: " + str(_parameters(original)["CodeVersion"]["Default"]),
            "+    Default: '0.2.0'",
        ]

        # Buckets created private, encrypted with SSE-S3, TLS only.
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values()) and len(block) == 4
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        # The embedded endpoint speaks plain http, which a TLS-only statement would lock out.
        with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
            s3.get_bucket_policy(Bucket=bucket)
        assert f"[{region}] created bucket {bucket} (SSE-S3, plain-http endpoint, so no TLS-only" in out

        link = qcl.quick_create_link(region, "0.2.0", bucket_prefix="acme-rel")
        assert f"quick-create: {link}" in out
    # Zips go up before the template in each region, so the template never points at missing code.
    uploads = [line for line in out.splitlines() if line.startswith("[eu-west-1] uploaded")]
    assert [u.split("/")[-1].split(" ")[0] for u in uploads] == [
        "provisioner.zip",
        "forwarder.zip",
        "onboarding.yaml",
    ]


def test_refuses_to_overwrite_a_published_version_unless_forced(
    endpoint: str, dist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _argv(endpoint, dist, "--regions", "eu-west-1", "--create-buckets")
    assert publish.main(argv) == 0
    s3 = _s3(endpoint, "eu-west-1")
    key = f"{KEY_ROOT}/0.2.0/provisioner.zip"
    before = s3.head_object(Bucket="acme-rel-eu-west-1", Key=key)["ETag"]
    capsys.readouterr()

    (dist / "provisioner.zip").write_bytes(b"PK a different build")
    assert publish.main(argv) == 1
    err = capsys.readouterr().err
    assert "version 0.2.0 is already published in s3://acme-rel-eu-west-1/alb-log-onboarding/0.2.0/" in err
    assert "--force" in err
    assert s3.head_object(Bucket="acme-rel-eu-west-1", Key=key)["ETag"] == before

    assert publish.main([*argv, "--force"]) == 0
    assert "--force: overwriting 3 object(s)" in capsys.readouterr().out
    body = s3.get_object(Bucket="acme-rel-eu-west-1", Key=key)["Body"].read()
    assert body == b"PK a different build"


def test_a_missing_bucket_stops_everything_before_any_upload(
    endpoint: str, dist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = _s3(endpoint, "us-east-1")
    s3.create_bucket(Bucket="acme-rel-us-east-1")
    code = publish.main(_argv(endpoint, dist, "--regions", "us-east-1", "--regions", "ap-southeast-2"))
    assert code == 1
    err = capsys.readouterr().err
    assert "ap-southeast-2: bucket acme-rel-ap-southeast-2 does not exist; pass --create-buckets" in err
    assert "nothing was uploaded" in err
    assert s3.list_objects_v2(Bucket="acme-rel-us-east-1").get("KeyCount") == 0


def test_a_bucket_in_another_region_is_refused(
    endpoint: str, dist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = _s3(endpoint, "eu-central-1")
    s3.create_bucket(
        Bucket="acme-rel-eu-west-1", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
    )
    assert publish.main(_argv(endpoint, dist, "--regions", "eu-west-1")) == 1
    err = capsys.readouterr().err
    assert "bucket acme-rel-eu-west-1 is in eu-central-1; Lambda only loads code from a bucket in the" in err


def test_honours_aws_endpoint_url(
    endpoint: str, dist: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    argv = ["--version", "1.0.0", "--bucket-prefix", "acme-rel", "--dist", str(dist)]
    assert publish.main([*argv, "--regions", "eu-north-1", "--create-buckets"]) == 0, capsys.readouterr().err
    keys = _s3(endpoint, "eu-north-1").list_objects_v2(Bucket="acme-rel-eu-north-1")["KeyCount"]
    assert keys == 3


def test_public_read_grants_get_object_on_the_release_prefix_only(
    endpoint: str, dist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = _s3(endpoint, "us-east-1")
    s3.create_bucket(Bucket="acme-rel-us-east-1")
    theirs = {"Sid": "Theirs", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket"}
    theirs["Resource"] = "arn:aws:s3:::acme-rel-us-east-1"
    s3.put_bucket_policy(
        Bucket="acme-rel-us-east-1", Policy=json.dumps({"Version": "2012-10-17", "Statement": [theirs]})
    )
    assert publish.main(_argv(endpoint, dist, "--regions", "us-east-1", "--public-read")) == 0
    assert (
        "bucket policy lets anyone read s3://acme-rel-us-east-1/alb-log-onboarding/*"
        in capsys.readouterr().out
    )
    policy = json.loads(s3.get_bucket_policy(Bucket="acme-rel-us-east-1")["Policy"])
    assert policy["Statement"][0] == theirs
    assert policy["Statement"][1] == {
        "Sid": "AlbLogOnboardingReleaseRead",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::acme-rel-us-east-1/alb-log-onboarding/*",
    }
    block = s3.get_public_access_block(Bucket="acme-rel-us-east-1")["PublicAccessBlockConfiguration"]
    assert block["BlockPublicPolicy"] is False and block["BlockPublicAcls"] is True


def test_org_read_keeps_public_access_blocked(endpoint: str, dist: Path) -> None:
    argv = _argv(
        endpoint, dist, "--regions", "eu-west-1", "--create-buckets", "--read-org-id", "o-abc123def4"
    )
    assert publish.main(argv) == 0
    s3 = _s3(endpoint, "eu-west-1")
    statements = json.loads(s3.get_bucket_policy(Bucket="acme-rel-eu-west-1")["Policy"])["Statement"]
    read = next(s for s in statements if s["Sid"] == "AlbLogOnboardingReleaseRead")
    assert read["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-abc123def4"}}
    block = s3.get_public_access_block(Bucket="acme-rel-eu-west-1")["PublicAccessBlockConfiguration"]
    assert all(block.values())


def test_missing_zip_says_to_build_first(
    endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert publish.main(_argv(endpoint, tmp_path, "--regions", "eu-west-1", "--create-buckets")) == 1
    assert (
        "provisioner.zip is missing: run `python scripts/release/build_lambdas.py` first"
        in capsys.readouterr().err
    )


def test_a_version_the_template_would_reject_is_refused(
    endpoint: str, dist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert publish.main(_argv(endpoint, dist, "--regions", "eu-west-1", version="1.0/beta")) == 1
    assert "version '1.0/beta' must" in capsys.readouterr().err


# --- template rewriting and layout checks (no endpoint needed) --------------------------------------

SAMPLE = """\
# header comment
Parameters:
  LoadBalancerArn:
    Type: String
  CodeBucketPrefix:
    Type: String
    Default: "alb-log-onboarding"  # where the code lives
    AllowedPattern: ^[a-z0-9][a-z0-9.-]*[a-z0-9]$
  CodeVersion:
    Type: String
    Description: "Default: is not this line"
    Default: 0.1.0
    AllowedPattern: ^[0-9A-Za-z][0-9A-Za-z._+-]*$
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Handler: provisioner.handler.handler
      Code:
        S3Bucket: !Sub ${CodeBucketPrefix}-${AWS::Region}
        S3Key: !Join [/, [alb-log-onboarding, !Ref CodeVersion, provisioner.zip]]
  Fw:
    Type: AWS::Lambda::Function
    Properties:
      Handler: forwarder.handler.handler
      Code:
        S3Bucket: !Sub ${CodeBucketPrefix}-${AWS::Region}
        S3Key: !Sub alb-log-onboarding/${CodeVersion}/forwarder.zip
"""


FLOW = "  CodeVersion: {Type: String, Default: 0.1.0}\n"


def test_render_changes_only_the_two_default_lines_and_keeps_comments() -> None:
    rendered = publish.render_template(SAMPLE, version="2.0.0-rc.1", bucket_prefix="vendor")
    diff = [
        line
        for line in difflib.unified_diff(SAMPLE.splitlines(), rendered.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert diff == [
        '-    Default: "alb-log-onboarding"  # where the code lives',
        "+    Default: 'vendor'  # where the code lives",
        "-    Default: 0.1.0",
        "+    Default: '2.0.0-rc.1'",
    ]
    for region in ("eu-west-1", "cn-north-1", "us-gov-east-1"):
        publish.check_code_locations(rendered, region)


def test_the_repository_template_matches_the_publish_layout() -> None:
    rendered = publish.render_template(
        TEMPLATE.read_text(encoding="utf-8"), version="9.9.9", bucket_prefix="vendor"
    )
    publish.check_code_locations(rendered, "eu-west-1")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (SAMPLE.replace("    Default: 0.1.0\n", ""), "CodeVersion parameter has no Default line"),
        (
            SAMPLE.replace(SAMPLE[SAMPLE.index("  CodeVersion:") : SAMPLE.index("Resources:")], FLOW),
            "block-style",
        ),
        (
            SAMPLE.replace("  LoadBalancerArn:\n    Type: String\n", ""),
            "lacks the parameter(s) LoadBalancerArn",
        ),
        (
            SAMPLE.replace("LoadBalancerArn:\n    Type: String", "LoadBalancerArn:\n    NoEcho: true"),
            "NoEcho",
        ),
        (SAMPLE.replace("${CodeVersion}/forwarder.zip", "v1/forwarder.zip"), "Fw loads its code from s3://"),
        (SAMPLE.replace("forwarder.handler.handler", "other.handler"), "functions for ['provisioner']"),
    ],
)
def test_render_and_layout_refuse_what_they_cannot_vouch_for(template: str, message: str) -> None:
    with pytest.raises(publish.PublishError, match=re.escape(message)):
        rendered = publish.render_template(template, version="1.0.0", bucket_prefix="vendor")
        publish.check_code_locations(rendered, "eu-west-1")


def test_a_version_outside_the_template_pattern_is_refused() -> None:
    strict = SAMPLE.replace("^[0-9A-Za-z][0-9A-Za-z._+-]*$", r"^\d+\.\d+\.\d+$")
    with pytest.raises(publish.PublishError, match=r"'1.0.0-rc.1' does not match the template's CodeVersion"):
        publish.render_template(strict, version="1.0.0-rc.1", bucket_prefix="vendor")


class _LyingS3:
    """An S3 stand-in that stores whatever it likes: the upload check must notice."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        self.bodies[kwargs["Key"]] = kwargs["Body"][:-1]
        return {}

    def head_object(self, **kwargs: Any) -> dict[str, Any]:
        body = self.bodies[kwargs["Key"]]
        return {"ChecksumSHA256": _b64sha(body), "ContentLength": len(body)}


def test_upload_verifies_what_s3_stored() -> None:
    artifact = publish.Artifact("forwarder.zip", b"PK payload", "application/zip")
    with pytest.raises(publish.PublishError, match="does not hold what was uploaded"):
        publish.upload(_LyingS3(), "b", "k", artifact, account="123456789012")


def test_help_runs_from_the_repo_root_without_aws() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/release/publish.py", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
    )
    assert result.returncode == 0, result.stderr
    assert "--create-buckets" in result.stdout and "--force" in result.stdout


def test_created_bucket_denies_plain_http_when_the_endpoint_is_https(endpoint: str) -> None:
    s3 = _s3(endpoint, "eu-west-1")
    publish.create_bucket(
        s3,
        "eu-west-1",
        "acme-rel-eu-west-1",
        account="123456789012",
        read=publish.ReadAccess(),
        tls_only=True,
    )
    statements = json.loads(s3.get_bucket_policy(Bucket="acme-rel-eu-west-1")["Policy"])["Statement"]
    assert statements == [
        {
            "Sid": "AlbLogOnboardingTlsOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::acme-rel-eu-west-1", "arn:aws:s3:::acme-rel-eu-west-1/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
    # moto evaluates the statement: this plain-http client may no longer write objects.
    with pytest.raises(s3.exceptions.ClientError, match="Forbidden"):
        s3.put_object(Bucket="acme-rel-eu-west-1", Key="x", Body=b"x")
    block = s3.get_public_access_block(Bucket="acme-rel-eu-west-1")["PublicAccessBlockConfiguration"]
    assert all(block.values())
    ownership = s3.get_bucket_ownership_controls(Bucket="acme-rel-eu-west-1")["OwnershipControls"]
    assert ownership["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
