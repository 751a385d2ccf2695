"""`python -m forwarder parse`: files, stdin, formats, errors, summary, version."""

from __future__ import annotations

import gc
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
from geo_databases import ASN_GEO, CITY_GEO, LONDON_V4, asn_database, city_database

from forwarder import __version__
from forwarder.cli import main
from forwarder.records import record_event_id

REPO = Path(__file__).resolve().parents[2]

ALB_LINES = [
    "https 2024-05-01T12:00:01.123456Z app/my-lb/50dc6c495c0c9188 203.0.113.7:51234 10.0.1.20:8080 "
    '0.001 0.012 0.000 200 200 312 4821 "GET https://www.example.com:443/a?b=1 HTTP/1.1" "curl/8.5.0" '
    "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 "
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067 "
    '"Root=1-6632a1b1-0c9e5e3f1a2b3c4d5e6f7a8b" "www.example.com" "-" 1 2024-05-01T12:00:01.110000Z '
    '"forward" "-" "-" "10.0.1.20:8080" "200" "-" "-" TID_0123 "-" "-" "-" 10.0.0.12',
    "http 2024-05-01T12:00:02.000001Z app/my-lb/50dc6c495c0c9188 198.51.100.9:40000 - -1 -1 -1 400 - 0 272 "
    '"- - -" "-" - - - "-" "-" "-" - 2024-05-01T12:00:02.000000Z "-" "-" "-" "-" "-" "-" "-" TID_0456 '
    '"-" "-" "-" 10.0.0.12',
    "this line is damaged",
]
ALB_NAME = (
    "123456789012_elasticloadbalancing_us-east-1_app.my-lb.50dc6c495c0c9188_20240501T1205Z_10.0.0.12_x.log.gz"
)
HEALTH_LINE = "http 2025-10-31T12:44:58.901409Z 1.121980746 172.31.31.9:80 HCLogsTestIPs FAIL 502 TargetError"


def run_parse(
    capsysbinary: pytest.CaptureFixture[bytes], *args: str
) -> tuple[int, list[dict[str, object]], str]:
    status = main(["parse", *args])
    captured = capsysbinary.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    return status, records, captured.err.decode()


def write_gz(path: Path, lines: list[str]) -> Path:
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


def test_gz_file_gives_one_json_record_per_line(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = write_gz(tmp_path / ALB_NAME, ALB_LINES)
    status, records, err = run_parse(capsysbinary, str(path))
    assert status == 0
    assert err == ""
    assert [r["line_number"] for r in records] == [1, 2, 3]
    assert records[0]["elb_status_code"] == 200
    assert records[0]["request_url"] == "https://www.example.com:443/a?b=1"
    assert records[1]["target_ip"] is None
    assert records[1]["http_method"] is None
    assert records[2]["raw"] == "this line is damaged"
    assert "parse_error" in records[2]
    for number, record in enumerate(records, 1):
        assert record["log_type"] == "alb_access"
        assert record["s3_bucket"] is None
        assert record["s3_key"] == str(path)
        assert record["event_id"] == record_event_id(None, str(path), "", number)


def test_plain_file_and_crlf(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    path = tmp_path / "export.log"
    path.write_bytes(("\r\n".join(ALB_LINES[:2]) + "\r\n").encode())
    status, records, _ = run_parse(capsysbinary, str(path))
    assert status == 0
    assert [r["elb_status_code"] for r in records] == [200, 400]


def test_stdin_with_detection_from_the_first_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    source = write_gz(tmp_path / "piped.gz", [HEALTH_LINE, HEALTH_LINE])
    with source.open("rb") as stream:
        monkeypatch.setattr(sys, "stdin", type("Stdin", (), {"buffer": stream})())
        status, records, _ = run_parse(capsysbinary, "-")
    assert status == 0
    assert [r["log_type"] for r in records] == ["alb_health_check"] * 2
    assert records[0]["status"] == "FAIL"
    assert records[0]["s3_key"] == "-"


def test_format_option_overrides_detection(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = write_gz(tmp_path / ALB_NAME, [HEALTH_LINE])  # name says ALB access, content is health check
    _, detected, _ = run_parse(capsysbinary, str(path))
    assert "parse_error" in detected[0]
    status, forced, _ = run_parse(capsysbinary, str(path), "--format", "alb_health_check")
    assert status == 0
    assert forced[0]["log_type"] == "alb_health_check"
    assert forced[0]["reason_code"] == "TargetError"


def test_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["parse", "x.log", "--format", "cloudfront"])
    assert caught.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


GROK = '%{HTTPDATE:timestamp} "(?:%{WORD:http_method}|-) %{NOTSPACE:request} HTTP/%{NUMBER:http_version}" '
GROK += "%{NUMBER:status:int}"


def test_grok_option_previews_a_custom_format_on_a_local_file(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = write_gz(tmp_path / ALB_NAME, ['10/Oct/2000:13:55:36 -0700 "GET /a HTTP/1.1" 200', ALB_LINES[0]])
    status, records, err = run_parse(capsysbinary, str(path), "--grok", GROK, "--summary")
    assert status == 0
    assert records[0]["status"] == 200
    assert records[0]["timestamp"] == "2000-10-10T20:55:36Z"
    assert [r["log_type"] for r in records] == ["grok", "grok"]  # the pattern wins over the file name
    assert records[1]["parse_error"] == "does not match custom format 'grok'"
    assert err.strip().endswith("log_type=grok lines=2 parsed=1 unparseable=1 truncated=0")


def test_geoip_option_adds_client_geo_from_local_databases(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    city, asn = tmp_path / "city.mmdb", tmp_path / "asn.mmdb"
    city_database(tmp_path)  # writes city.mmdb
    asn_database(tmp_path)  # writes asn.mmdb
    public = ALB_LINES[0].replace("203.0.113.7:51234", f"{LONDON_V4}:51234")
    path = write_gz(tmp_path / ALB_NAME, [public, ALB_LINES[1]])
    status, records, _ = run_parse(capsysbinary, str(path), "--geoip", f"{city},{asn}")
    assert status == 0
    assert records[0]["client_geo"] == CITY_GEO[LONDON_V4] | ASN_GEO[LONDON_V4]
    assert "client_geo" not in records[1]  # 198.51.100.9 is a documentation address: not looked up
    _, plain, _ = run_parse(capsysbinary, str(path))
    assert "client_geo" not in plain[0]


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ("missing.mmdb", "argument --geoip: no such file: missing.mmdb"),
        ("notes.txt", "argument --geoip: notes.txt is not a MaxMind DB (.mmdb) file"),
    ],
)
def test_a_geoip_file_that_cannot_be_opened_is_a_usage_error(
    files: str,
    error: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_bytes(b"not a database\n" * 100)
    with pytest.raises(SystemExit) as caught:
        main(["parse", "x.log", "--geoip", files])
    assert caught.value.code == 2
    assert error in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--grok", "%{HTTPDATE:timestamp} %{NGINX}"], "argument --grok: unknown grok pattern %{NGINX}"),
        (["--grok", "%{WORD:w}", "--format", "raw"], "argument --format: not allowed with argument --grok"),
    ],
)
def test_a_bad_grok_pattern_is_a_usage_error_before_the_file_is_opened(
    args: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["parse", "no-such-file.log", *args])
    assert caught.value.code == 2
    assert error in capsys.readouterr().err


def test_summary_counts_go_to_stderr(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    path = write_gz(tmp_path / ALB_NAME, [*ALB_LINES, "", "x" * 3000])
    status, records, err = run_parse(capsysbinary, str(path), "--summary", "--max-line-bytes", "2000")
    assert status == 0
    assert len(records) == 5
    assert err.strip().endswith("log_type=alb_access lines=5 parsed=2 unparseable=3 truncated=1")


def test_missing_file_exits_2_with_one_line(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    status, records, err = run_parse(capsysbinary, str(tmp_path / "nope.log.gz"))
    assert status == 2
    assert records == []
    assert err.count("\n") == 1
    assert "nope.log.gz" in err
    assert "No such file" in err


def test_corrupt_gzip_exits_2_after_printing_the_good_lines(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / ALB_NAME
    path.write_bytes(
        gzip.compress((ALB_LINES[0] + "\n").encode()) + b"\x1f\x8b\x08\x00 definitely not deflate"
    )
    status, records, err = run_parse(capsysbinary, str(path))
    assert status == 2
    assert [r["line_number"] for r in records] == [1]
    assert err.startswith("error: ")
    assert "offset" in err
    assert err.count("\n") == 1


def test_truncated_gzip_exits_2(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    path = tmp_path / ALB_NAME
    path.write_bytes(gzip.compress(("\n".join(ALB_LINES) * 50).encode())[:-20])
    status, _, err = run_parse(capsysbinary, str(path))
    assert status == 2
    assert "truncated" in err


def test_a_gz_file_that_is_not_gzip_exits_2_as_the_forwarder_refuses_it(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """The preview follows the forwarder's rule: a .gz name promises gzip; text under it is damage."""
    path = tmp_path / ALB_NAME
    path.write_text("\n".join(ALB_LINES) + "\n")
    status, records, err = run_parse(capsysbinary, str(path))
    assert status == 2
    assert records == []
    assert "is not gzip" in err


def test_many_lines_are_all_written(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    path = write_gz(tmp_path / ALB_NAME, ALB_LINES[:2] * 2500)
    status, records, _ = run_parse(capsysbinary, str(path))
    assert status == 0
    assert [r["line_number"] for r in records] == list(range(1, 5001))


def test_python_dash_m_entry_point_version_and_exit_code(tmp_path: Path) -> None:
    version = subprocess.run(
        [sys.executable, "-m", "forwarder", "--version"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert version.returncode == 0
    assert version.stdout.strip() == f"python -m forwarder {__version__}"

    path = write_gz(tmp_path / ALB_NAME, ALB_LINES)
    parsed = subprocess.run(
        [sys.executable, "-m", "forwarder", "parse", str(path)], capture_output=True, cwd=REPO, check=False
    )
    assert parsed.returncode == 0
    assert len(parsed.stdout.splitlines()) == 3

    missing = subprocess.run(
        [sys.executable, "-m", "forwarder", "parse", str(tmp_path / "missing.log")],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert missing.returncode == 2
    assert missing.stdout == ""
    assert missing.stderr.startswith("error: cannot open")


def test_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    path = write_gz(tmp_path / ALB_NAME, ALB_LINES[:2] * 20000)
    producer = subprocess.Popen(
        [sys.executable, "-m", "forwarder", "parse", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    assert producer.stdout is not None
    producer.stdout.readline()
    producer.stdout.close()
    _, err = producer.communicate(timeout=60)
    assert producer.returncode == 0
    assert err == b""


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    assert "parse" in capsys.readouterr().err


def test_collector_settings_are_restored_after_parsing(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    before = gc.get_threshold()
    run_parse(capsysbinary, str(write_gz(tmp_path / ALB_NAME, ALB_LINES)))
    assert gc.get_threshold() == before
    run_parse(capsysbinary, str(tmp_path / "missing.log"))
    assert gc.get_threshold() == before


def test_output_format_json_prints_the_logs_envelope(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = write_gz(tmp_path / ALB_NAME, ALB_LINES)
    status, bodies, _ = run_parse(capsysbinary, str(path), "--output-format", "json")
    assert status == 0
    assert len(bodies) == 1
    logs = bodies[0]["logs"]
    assert isinstance(logs, list)
    assert [r["line_number"] for r in logs] == [1, 2, 3]


def test_output_format_ndjson_prints_one_record_per_line(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = write_gz(tmp_path / ALB_NAME, ALB_LINES)
    status, records, _ = run_parse(capsysbinary, str(path), "--output-format", "ndjson")
    assert status == 0
    assert [r["line_number"] for r in records] == [1, 2, 3]


def test_output_format_elasticsearch_prints_the_bulk_body(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = write_gz(tmp_path / ALB_NAME, ALB_LINES)
    status, lines, err = run_parse(
        capsysbinary, str(path), "--output-format", "elasticsearch", "--es-index", "alb-%Y.%m.%d", "--summary"
    )
    assert status == 0
    assert "lines=3 parsed=2 unparseable=1" in err
    actions, documents = lines[::2], lines[1::2]
    assert [a["create"]["_index"] for a in actions[:2]] == ["alb-2024.05.01", "alb-2024.05.01"]
    assert [a["create"]["_id"] for a in actions] == [d["event_id"] for d in documents]
    assert documents[0]["@timestamp"] == "2024-05-01T12:00:01.123456Z"


def test_output_format_otlp_prints_an_export_logs_request(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = write_gz(tmp_path / ALB_NAME, ALB_LINES)
    status, bodies, _ = run_parse(capsysbinary, str(path), "--output-format", "otlp")
    assert status == 0
    (body,) = bodies
    log_records = [r["scopeLogs"][0]["logRecords"][0] for r in body["resourceLogs"]]
    numbers = [next(a["value"] for a in r["attributes"] if a["key"] == "line_number") for r in log_records]
    assert numbers == [{"intValue": "1"}, {"intValue": "2"}, {"intValue": "3"}]
    assert log_records[0]["timeUnixNano"] == "1714564801123456000"  # 2024-05-01T12:00:01.123456Z


def test_output_format_elasticsearch_needs_an_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ES_INDEX", raising=False)
    path = write_gz(tmp_path / ALB_NAME, ALB_LINES)
    assert main(["parse", str(path), "--output-format", "elasticsearch"]) == 2
    assert "ES_INDEX is required" in capsys.readouterr().err


def test_the_preview_follows_the_formats_settings_as_the_forwarder_reads_them(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_gz(tmp_path / ALB_NAME, ALB_LINES)
    monkeypatch.setenv("DESTINATION_SETTINGS", "LOKI_LABELS=log_type,env=prod")
    status, (body,), _ = run_parse(capsysbinary, str(path), "--output-format", "loki")
    assert status == 0
    assert [stream["stream"] for stream in body["streams"]] == [{"log_type": "alb_access", "env": "prod"}]
    monkeypatch.setenv("DESTINATION_SETTINGS", "ES_DOCUMENT_ID=none")
    status, lines, _ = run_parse(
        capsysbinary, str(path), "--output-format", "elasticsearch", "--es-index", "a"
    )
    assert status == 0
    assert lines[::2] == [{"create": {"_index": "a"}}] * 3


def test_a_bad_setting_of_the_format_is_named_before_anything_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_gz(tmp_path / ALB_NAME, ALB_LINES)
    monkeypatch.setenv("LOKI_LABELS", "request_url")
    assert main(["parse", str(path), "--output-format", "loki"]) == 2
    err = capsys.readouterr().err
    assert "LOKI_LABELS may name only" in err and "--es-index" not in err


def test_include_raw_line_adds_the_line_to_parsed_records(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_gz(tmp_path / ALB_NAME, ALB_LINES)
    monkeypatch.delenv("INCLUDE_RAW_LINE", raising=False)
    status, records, _ = run_parse(capsysbinary, "--include-raw-line", str(path))
    assert status == 0
    assert [r.get("raw_line") for r in records] == [ALB_LINES[0], ALB_LINES[1], None]
    assert records[2]["raw"] == ALB_LINES[2]
    _, records, _ = run_parse(capsysbinary, str(path))
    assert all("raw_line" not in r for r in records)
    # As the forwarder does, with its variable set.
    monkeypatch.setenv("INCLUDE_RAW_LINE", "true")
    _, records, _ = run_parse(capsysbinary, str(path))
    assert records[0]["raw_line"] == ALB_LINES[0]
