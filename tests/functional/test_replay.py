"""`python -m forwarder replay`: backfill from moto S3 to the loopback receiver, resume, filters, errors."""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from alb_log_factory import gzip_lines, log_key, make_alb_lines
from aws_events import BUCKET, Stored, s3_notification, sns_event
from botocore.exceptions import ClientError
from geo_databases import ASN_GEO, CITY_GEO, LONDON_V4, asn_database, city_database
from ingest_server import IngestServer, Reply

from forwarder import replay
from forwarder.cli import main
from forwarder.progress import format_bytes
from forwarder.records import record_event_id
from forwarder.replay import (
    ReplayInputError,
    ReplayState,
    file_time,
    is_log_file,
    parse_s3_url,
    parse_when,
    plan_replay,
    write_json_atomic,
)

pytest_plugins = ["conftest_forwarder"]

PREFIX = "prod"
START = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


def expected_ids(obj: Stored) -> list[str]:
    return [record_event_id(obj.bucket, obj.key, obj.etag, n) for n in range(1, len(obj.lines) + 1)]


def ids_by_key(ingest: IngestServer) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for record in ingest.records():
        result.setdefault(str(record["s3_key"]), []).append(str(record["event_id"]))
    return result


@pytest.fixture
def files(put_log: Any) -> list[Stored]:
    """Five ALB log files, 5 minutes apart (09:30 ... 09:50), by different nodes, in key order."""
    stored = []
    for number in range(5):
        key = log_key(prefix=PREFIX, when=START + timedelta(minutes=5 * number), suffix=f"n{number}")
        stored.append(put_log(key, count=20 + number, seed=number + 1))
    return stored


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "replay-state.json"


class Runner:
    """``runner(*args) -> (status, stdout, stderr)`` for `replay s3://BUCKET/prod/ --state-file ...`."""

    def __init__(self, state_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.state_file = state_file
        self._capsys = capsys

    def __call__(self, *args: str, url: str = f"s3://{BUCKET}/{PREFIX}/") -> tuple[int, str, str]:
        self._capsys.readouterr()
        status = main(["replay", url, "--state-file", str(self.state_file), *args])
        captured = self._capsys.readouterr()
        return status, captured.out, captured.err

    def state(self) -> dict[str, Any]:
        return dict(json.loads(self.state_file.read_text()))


@pytest.fixture
def run(
    forwarder_env: Any, sleeps: list[float], state_file: Path, capsys: pytest.CaptureFixture[str]
) -> Runner:
    return Runner(state_file, capsys)


# --- delivery --------------------------------------------------------------------------------------------


def test_replay_sends_every_line_once_with_the_event_ids_the_lambda_sends(
    run: Runner, files: list[Stored], put_log: Any, ingest: IngestServer, invoke: Any
) -> None:
    put_log(f"{PREFIX}/AWSLogs/123456789012/ELBAccessLogTestFile", body=b"Enable AccessLog for ELB: x")
    put_log(f"{PREFIX}/README.txt", body=b"not a log")
    put_log("other/" + files[0].key, body=gzip_lines(["outside the prefix"]))

    status, out, _ = run()

    assert status == 0
    by_key = ids_by_key(ingest)
    assert by_key == {obj.key: expected_ids(obj) for obj in files}
    assert not [i for i, n in Counter(ingest.event_ids()).items() if n > 1]
    assert "5 files sent" in out
    assert "2 skipped (not log files)" in out
    assert f"lines: {sum(len(f.lines) for f in files)}" in out

    # The Lambda, notified of one of these files, sends exactly the same records.
    replayed = by_key[files[2].key]
    ingest.reset()
    invoke(sns_event(s3_notification(files[2])))
    assert ingest.event_ids() == replayed

    state = run.state()
    assert state["bucket"] == BUCKET
    assert {key: entry["etag"] for key, entry in state["objects"].items()} == {f.key: f.etag for f in files}
    assert state["objects"][files[0].key]["lines"] == len(files[0].lines)


def test_progress_lines_name_each_file_when_stderr_is_not_a_terminal(
    run: Runner, files: list[Stored]
) -> None:
    status, _, err = run()

    assert status == 0
    progress = [line for line in err.splitlines() if line.startswith("[")]
    assert [line.split(" ")[0] for line in progress] == ["[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"]
    assert all(
        f"sent s3://{BUCKET}/{f.key} ({len(f.lines)} lines" in line
        for f, line in zip(files, progress, strict=True)
    )
    assert "\r" not in err


def test_since_is_inclusive_and_until_exclusive_on_the_time_in_the_file_name(
    run: Runner, files: list[Stored], ingest: IngestServer
) -> None:
    # Files end at 09:30, 09:35, 09:40, 09:45, 09:50.
    status, out, _ = run("--since", "2025-03-14T09:35:00Z", "--until", "2025-03-14T09:45Z")

    assert status == 0
    assert set(ids_by_key(ingest)) == {files[1].key, files[2].key}
    assert "3 outside --since/--until" in out


def test_a_file_without_an_elb_name_is_dated_by_its_last_modified(
    run: Runner, put_log: Any, ingest: IngestServer
) -> None:
    exported = put_log(f"{PREFIX}/exports/copied-by-hand.log.gz", count=3)
    today = datetime.now(UTC).date()

    status, _, _ = run("--until", "2025-03-15")  # the object was written today: out of range
    assert status == 0
    assert ingest.records() == []

    status, _, _ = run("--since", today.isoformat())
    assert status == 0
    assert ingest.event_ids() == expected_ids(exported)


def test_endpoint_option_overrides_http_endpoint(
    run: Runner, files: list[Stored], forwarder_env: Any, ingest: IngestServer
) -> None:
    forwarder_env(HTTP_ENDPOINT="https://ingest.invalid/never-used")

    status, _, _ = run("--endpoint", ingest.url)

    assert status == 0
    assert len(ingest.records()) == sum(len(f.lines) for f in files)


def test_the_credential_comes_from_the_same_secret_the_lambda_reads(
    run: Runner, files: list[Stored], forwarder_env: Any, ingest: IngestServer
) -> None:
    arn = boto3.client("secretsmanager").create_secret(Name="alb-ingest-token", SecretString="tok-51c0")[
        "ARN"
    ]
    forwarder_env(HTTP_AUTH_TYPE="bearer", HTTP_AUTH_SECRET_ARN=arn)

    status, out, err = run()

    assert status == 0
    assert {request.header("Authorization") for request in ingest.requests} == {"Bearer tok-51c0"}
    assert "tok-51c0" not in out + err


def test_an_unreadable_secret_fails_before_anything_is_sent(
    run: Runner, files: list[Stored], forwarder_env: Any, ingest: IngestServer
) -> None:
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:alb-ingest-token-AbCdEf"
    forwarder_env(HTTP_AUTH_TYPE="bearer", HTTP_AUTH_SECRET_ARN=missing)

    status, _, err = run()

    assert status == 2
    assert "cannot read secret" in err and "secretsmanager:GetSecretValue" in err
    assert ingest.requests == []
    assert not run.state_file.exists()


def test_geo_databases_of_the_forwarder_settings_add_client_geo(
    run: Runner, put_log: Any, s3: Any, forwarder_env: Any, ingest: IngestServer, *, tmp_path: Path
) -> None:
    s3.create_bucket(Bucket="geo-data")
    s3.put_object(Bucket="geo-data", Key="City.mmdb", Body=city_database(tmp_path))
    s3.put_object(Bucket="geo-data", Key="ASN.mmdb", Body=asn_database(tmp_path))
    forwarder_env(GEOIP_DATABASE_S3_URI="s3://geo-data/City.mmdb,s3://geo-data/ASN.mmdb")
    public, private = (line.split(" ") for line in make_alb_lines(2))
    public[3], private[3] = f"{LONDON_V4}:51234", "10.0.3.7:51234"
    put_log(log_key(prefix=PREFIX, when=START), [" ".join(public), " ".join(private)])

    status, _, _ = run()

    assert status == 0
    assert [r.get("client_geo") for r in ingest.records()] == [CITY_GEO[LONDON_V4] | ASN_GEO[LONDON_V4], None]


def test_a_geo_database_that_cannot_be_read_fails_before_anything_is_sent(
    run: Runner, files: list[Stored], forwarder_env: Any, ingest: IngestServer
) -> None:
    forwarder_env(GEOIP_DATABASE_S3_URI=f"s3://{BUCKET}/missing/City.mmdb")

    status, _, err = run()

    assert status == 2
    assert f"GEOIP_DATABASE_S3_URI: cannot read s3://{BUCKET}/missing/City.mmdb (NoSuchKey)" in err
    assert ingest.requests == []
    assert not run.state_file.exists()


# --- resuming --------------------------------------------------------------------------------------------


def test_interrupted_run_resumes_with_the_files_not_yet_delivered(
    run: Runner, files: list[Stored], ingest: IngestServer, state_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_forward = replay.forward_object

    def interrupted_at_third_file(s3: Any, bucket: str, key: str, **kwargs: Any) -> Any:
        if key == files[2].key:
            raise KeyboardInterrupt  # Ctrl-C while file 3 of 5 starts
        return real_forward(s3, bucket, key, **kwargs)

    monkeypatch.setattr(replay, "forward_object", interrupted_at_third_file)
    status, out, err = run()

    assert status == 130
    assert "run the same command again to resume" in err
    assert "2 files sent" in out
    assert set(ids_by_key(ingest)) == {files[0].key, files[1].key}
    assert set(json.loads(state_file.read_text())["objects"]) == {files[0].key, files[1].key}

    monkeypatch.setattr(replay, "forward_object", real_forward)
    ingest.reset()
    status, out, _ = run()

    assert status == 0
    assert ids_by_key(ingest) == {f.key: expected_ids(f) for f in files[2:]}
    assert "3 files sent, 2 skipped (already delivered)" in out


def test_rerun_sends_nothing_again_but_a_changed_object(
    run: Runner, files: list[Stored], put_log: Any, ingest: IngestServer
) -> None:
    assert run()[0] == 0
    ingest.reset()

    status, out, _ = run()
    assert status == 0
    assert ingest.requests == []
    assert "nothing to send: skipped: 5 already delivered" in out

    changed = put_log(files[3].key, count=7, seed=99)  # same key, new content, new ETag
    assert changed.etag != files[3].etag
    status, out, _ = run()

    assert status == 0
    assert ingest.event_ids() == expected_ids(changed)
    assert "1 file sent, 4 skipped (already delivered)" in out


def test_a_failed_file_is_reported_and_retried_by_the_next_run(
    run: Runner, files: list[Stored], ingest: IngestServer, state_file: Path
) -> None:
    # The receiver refuses the second file's only batch (a permanent error: no retry).
    ingest.script(Reply(200), Reply(400, body=b'{"error":"schema"}'))

    status, out, err = run()

    assert status == 1
    assert f"FAILED s3://{BUCKET}/{files[1].key}" in err
    assert "4 files sent" in out and "1 failed" in out
    assert f"s3://{BUCKET}/{files[1].key}: " in out.split("failed files", 1)[1]
    assert files[1].key not in json.loads(state_file.read_text())["objects"]

    ingest.reset()
    status, out, _ = run()
    assert status == 0
    assert ids_by_key(ingest) == {files[1].key: expected_ids(files[1])}


def test_a_failed_file_is_named_once_per_line(run: Runner, files: list[Stored], put_log: Any) -> None:
    """Errors of the object itself (here: cut short) name its S3 URI; the report does not repeat it."""
    whole = gzip_lines(list(files[1].lines))
    put_log(files[1].key, body=whole[: len(whole) // 2])
    uri = f"s3://{BUCKET}/{files[1].key}"

    status, out, err = run()

    assert status == 1
    (progress_line,) = [line for line in err.splitlines() if "FAILED" in line]
    (report_line,) = [line for line in out.split("failed files", 1)[1].splitlines() if files[1].key in line]
    for line in (progress_line, report_line):
        assert line.count(uri) == 1, line
        assert "truncated" in line


def test_a_huge_retry_after_is_capped_and_logged(
    run: Runner, files: list[Stored], ingest: IngestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """replay has no invocation deadline to bound a wait: a Retry-After of 100000 s waits --max-retry-wait."""
    ingest.script(Reply(429, headers={"Retry-After": "100000"}))

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="forwarder.sender"):
        status, out, _ = run("--max-retry-wait", "0.2")

    assert status == 0, out
    assert time.monotonic() - started < 30
    assert len(ingest.records()) == sum(len(f.lines) for f in files)
    assert "Retry-After 100000s capped at 0.2s (HTTP_MAX_RETRY_WAIT_SECONDS)" in caplog.text


def test_stops_when_every_file_fails_in_a_row(run: Runner, files: list[Stored], ingest: IngestServer) -> None:
    ingest.set_default(Reply(401, body=b'{"error":"bad token"}'))

    status, out, _ = run("--max-consecutive-failures", "2")

    assert status == 1
    assert len(ingest.requests) == 2
    assert "2 failed, 3 not attempted" in out
    assert "stopped after 2 files in a row failed" in out


def test_test_mode_sends_nothing_and_records_nothing(
    run: Runner, files: list[Stored], forwarder_env: Any, ingest: IngestServer, state_file: Path
) -> None:
    forwarder_env(HTTP_TEST_MODE="true")

    status, _, err = run()

    assert status == 0
    assert ingest.requests == []
    assert not state_file.exists()
    assert "HTTP_TEST_MODE=true" in err


# --- dry run ---------------------------------------------------------------------------------------------


def test_dry_run_lists_what_would_be_sent_and_changes_nothing(
    run: Runner, files: list[Stored], ingest: IngestServer, state_file: Path, forwarder_env: Any
) -> None:
    status, out, _ = run("--dry-run", "--since", "2025-03-14T09:40Z")

    assert status == 0
    assert ingest.requests == []
    assert not state_file.exists()
    listed = [line for line in out.splitlines() if f"s3://{BUCKET}/" in line]
    assert [line.rsplit(" ", 1)[-1] for line in listed] == [f"s3://{BUCKET}/{f.key}" for f in files[2:]]
    assert [line.split()[:2] for line in listed] == [
        [f"2025-03-14T09:{minute}Z", f"{f.size:,}"] for minute, f in zip((40, 45, 50), files[2:], strict=True)
    ]
    total = format_bytes(sum(f.size for f in files[2:]))
    assert f"would send 3 files ({total}) from 2025-03-14T09:40Z to 2025-03-14T09:50Z" in out

    # With a state file from an earlier run, the dry run says what a real run would skip, and leaves
    # the state file exactly as it was.
    assert run()[0] == 0
    before = state_file.read_bytes()
    status, out, _ = run("--dry-run")
    assert status == 0
    assert "would send 0 files" in out and "5 already delivered" in out
    assert state_file.read_bytes() == before


def test_dry_run_needs_no_endpoint_configuration(
    run: Runner, files: list[Stored], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HTTP_ENDPOINT")
    status, out, _ = run("--dry-run")
    assert status == 0
    assert "would send 5 files" in out


def test_an_empty_prefix_says_where_log_files_are(run: Runner, files: list[Stored]) -> None:
    status, out, err = run("--dry-run", url=f"s3://{BUCKET}/production/")
    assert status == 0
    assert "would send 0 files" in out
    assert "no objects under" in err and "AWSLogs/<account>" in err


# --- the state file --------------------------------------------------------------------------------------


def test_state_file_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    write_json_atomic(path, {"objects": {"a": {"etag": "1"}}})
    before = path.read_bytes()

    def crash(*args: Any) -> None:
        raise OSError("No space left on device")

    # A crash while the new content is being written, and one just before the rename: the old file stays.
    for target in ("fsync", "replace"):
        with monkeypatch.context() as patch:
            patch.setattr(replay.os, target, crash)
            with pytest.raises(OSError, match="No space left"):
                write_json_atomic(path, {"objects": {"a": {"etag": "1"}, "b": {"etag": "2"}}})
        assert path.read_bytes() == before
        assert os.listdir(tmp_path) == ["state.json"]  # no temporary file left behind

    write_json_atomic(path, {"objects": {"b": {"etag": "2"}}})
    assert json.loads(path.read_text()) == {"objects": {"b": {"etag": "2"}}}


def test_a_state_file_that_cannot_be_written_stops_the_run(
    run: Runner, files: list[Stored], ingest: IngestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(replay.os, "fsync", disk_full)
    status, _, err = run()

    assert status == 2
    assert "cannot write the state file" in err and "No space left on device" in err
    assert set(ids_by_key(ingest)) == {files[0].key}  # stopped after the first file


def test_state_file_of_another_bucket_or_not_json_is_refused(
    run: Runner, files: list[Stored], state_file: Path, ingest: IngestServer
) -> None:
    state_file.write_text(json.dumps({"version": 1, "bucket": "some-other-bucket", "objects": {}}))
    status, _, err = run()
    assert status == 2
    assert "some-other-bucket" in err

    state_file.write_text("{ half a file")
    status, _, err = run()
    assert status == 2
    assert "is not a replay state file" in err
    assert ingest.requests == []


# --- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://bucket/prefix/", "not an s3:// URL"),
        ("s3://", "not an s3:// URL"),
        ("s3://a/logs/", "not a valid S3 bucket name"),
        ("s3://bad..name/logs/", "not a valid S3 bucket name"),
    ],
)
def test_bad_url_exits_2(run: Runner, url: str, message: str, ingest: IngestServer) -> None:
    status, _, err = run(url=url)
    assert status == 2
    assert message in err


def test_missing_bucket_exits_2(run: Runner, s3: Any) -> None:
    status, _, err = run(url="s3://no-such-bucket-here/prod/")
    assert status == 2
    assert "bucket 'no-such-bucket-here' does not exist" in err


def test_bad_dates_exit_2(run: Runner, files: list[Stored], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run("--since", "14/03/2025")
    assert exited.value.code == 2
    assert "not a date: '14/03/2025'" in capsys.readouterr().err

    status, _, err = run("--since", "2025-03-15", "--until", "2025-03-14")
    assert status == 2
    assert "--until is exclusive" in err


def test_missing_endpoint_configuration_exits_2_naming_the_variable(
    run: Runner, files: list[Stored], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HTTP_ENDPOINT")
    status, _, err = run()
    assert status == 2
    assert "HTTP_ENDPOINT is required" in err


def test_access_denied_listing_names_the_permission() -> None:
    class DeniedPaginator:
        def paginate(self, **kwargs: Any) -> Any:
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "ListObjectsV2"
            )

    class DeniedS3:
        def get_paginator(self, name: str) -> DeniedPaginator:
            return DeniedPaginator()

    state = ReplayState(Path("unused.json"), BUCKET)
    with pytest.raises(ReplayInputError, match=r"access denied listing .*s3:ListBucket"):
        plan_replay(DeniedS3(), BUCKET, "prod/", since=None, until=None, state=state)


# --- pure helpers ----------------------------------------------------------------------------------------


def test_parse_s3_url_keeps_the_prefix_as_given() -> None:
    assert parse_s3_url(f"s3://{BUCKET}/prod/AWSLogs/") == (BUCKET, "prod/AWSLogs/")
    assert parse_s3_url(f"s3://{BUCKET}") == (BUCKET, "")
    assert parse_s3_url(f"s3://{BUCKET}/") == (BUCKET, "")


def test_parse_when_accepts_dates_and_iso_timestamps_in_utc() -> None:
    assert parse_when("2025-03-14") == datetime(2025, 3, 14, tzinfo=UTC)
    assert parse_when("2025-03-14T09:30Z") == datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
    assert parse_when("2025-03-14T09:30:00") == datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
    assert parse_when("2025-03-14T10:30:00+01:00") == datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
    with pytest.raises(ReplayInputError):
        parse_when("yesterday")


def test_file_time_reads_the_interval_end_from_elb_names() -> None:
    modified = datetime(2025, 3, 14, 9, 36, 2, tzinfo=UTC)
    alb = log_key(when=datetime(2025, 3, 14, 9, 35, tzinfo=UTC))
    classic = (
        "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2025/03/14/"
        "123456789012_elasticloadbalancing_us-east-1_my-classic-lb_20250314T0935Z_10.0.0.1_abc.log"
    )
    assert file_time(alb, modified) == (datetime(2025, 3, 14, 9, 35, tzinfo=UTC), True)
    assert file_time(classic, modified) == (datetime(2025, 3, 14, 9, 35, tzinfo=UTC), True)
    assert file_time("exports/manual.log.gz", modified) == (modified, False)
    assert file_time("x_20251399T9999Z_y.log.gz", modified) == (modified, False)  # not a real time


def test_is_log_file() -> None:
    assert is_log_file(log_key())
    assert is_log_file("AWSLogs/1/elasticloadbalancing/r/2025/03/14/classic.log")
    assert not is_log_file("AWSLogs/123456789012/ELBAccessLogTestFile")
    assert not is_log_file("AWSLogs/1/elasticloadbalancing/r/2025/03/14/")
    assert not is_log_file("notes.txt")
