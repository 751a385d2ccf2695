"""Building the Lambda zips: reproducible bytes, Lambda-platform wheels, handlers that import from the zip.

The first build starts from an empty wheel cache, so it downloads the pinned wheels from the package index
(the only network this suite uses); every later build runs with --offline, which proves the cache is enough.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from script_modules import load_script

REPO_ROOT = Path(__file__).resolve().parents[2]
build_lambdas = load_script("release/build_lambdas")

PACKAGES = ("provisioner", "forwarder")
# What every AWS Lambda Python runtime provides (AWS documents boto3 and botocore with their own
# dependencies as part of the runtime image); the zips do not ship these.
LAMBDA_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")


@dataclass(frozen=True)
class Builds:
    cache: Path
    first: dict[str, Path]
    second: dict[str, Path]
    first_downloaded: dict[str, bool]
    second_downloaded: dict[str, bool]
    first_stdout: str
    specs: dict[str, Any]


def _build(
    tmp: Path, name: str, cache: Path, *, offline: bool, packages: tuple[str, ...] = PACKAGES, **kwargs: Any
) -> list[Any]:
    return list(
        build_lambdas.build_all(
            list(packages),
            dist=tmp / name / "dist",
            staging_root=tmp / name / "staging",
            cache=cache,
            offline=offline,
            **kwargs,
        )
    )


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    tmp = tmp_path_factory.mktemp("builds")
    cache = tmp / "wheel-cache"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        first = _build(tmp, "first", cache, offline=False, environ={})
    second = _build(tmp, "second", cache, offline=True, environ={})
    specs = {s.package: s for s in build_lambdas.resolve_specs(build_lambdas.DEFAULT_TEMPLATE, PACKAGES)}
    return Builds(
        cache=cache,
        first={b.package: b.path for b in first},
        second={b.package: b.path for b in second},
        first_downloaded={b.package: b.wheels_downloaded for b in first},
        second_downloaded={b.package: b.wheels_downloaded for b in second},
        first_stdout=printed.getvalue(),
        specs=specs,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- reproducibility --------------------------------------------------------------------------------


@pytest.mark.parametrize("package", PACKAGES)
def test_two_builds_give_identical_bytes(builds: Builds, package: str) -> None:
    first, second = builds.first[package], builds.second[package]
    assert first.read_bytes() == second.read_bytes()
    assert _sha256(first) == _sha256(second)


def test_build_prints_the_sha256_of_each_zip(builds: Builds) -> None:
    lines = builds.first_stdout.splitlines()
    for package, path in builds.first.items():
        # sha256sum's format, so `sha256sum -c` can check a download against it.
        assert f"{_sha256(path)}  {path}" in lines, package


def test_cold_cache_downloads_and_warm_cache_needs_no_network(builds: Builds) -> None:
    # The forwarder's orjson wheel had to be fetched the first time; the second build ran with --offline.
    assert builds.first_downloaded["forwarder"] is True
    assert builds.second_downloaded == {"provisioner": False, "forwarder": False}
    assert any(p.name.startswith("orjson-") for p in builds.cache.iterdir())


def test_a_tampered_cache_fails_the_build_instead_of_changing_the_zip(builds: Builds, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(builds.cache, cache)
    wheel = next(cache.glob("orjson-*.whl"))
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr("orjson/extra.py", "print('not what was pinned')\n")
    with pytest.raises(build_lambdas.BuildError, match="does not match its pinned hash"):
        _build(tmp_path, "tampered", cache, offline=True, packages=("forwarder",), environ={})
    assert not (tmp_path / "tampered" / "dist" / "forwarder.zip").exists()


def test_source_date_epoch_sets_every_timestamp(builds: Builds, tmp_path: Path) -> None:
    epoch = 1_700_000_000  # 2023-11-14 22:13:20 UTC
    _build(
        tmp_path,
        "dated",
        builds.cache,
        offline=True,
        packages=("provisioner",),
        environ={"SOURCE_DATE_EPOCH": str(epoch)},
    )
    dated = tmp_path / "dated" / "dist" / "provisioner.zip"
    with zipfile.ZipFile(dated) as archive:
        stamps = {info.date_time for info in archive.infolist()}
    assert stamps == {(2023, 11, 14, 22, 13, 20)}
    with zipfile.ZipFile(dated) as a, zipfile.ZipFile(builds.first["provisioner"]) as b:
        assert a.namelist() == b.namelist()
        assert all(a.read(n) == b.read(n) for n in a.namelist())


# --- layout -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("package", PACKAGES)
def test_zip_entries_are_normalised(builds: Builds, package: str) -> None:
    with zipfile.ZipFile(builds.first[package]) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0), info.filename
        assert not info.filename.startswith("/") and ".." not in info.filename.split("/")
        assert "__pycache__" not in info.filename and not info.filename.endswith((".pyc", ".pyo"))
        mode = info.external_attr >> 16
        if info.is_dir():
            assert mode == 0o040755, info.filename
        else:
            assert mode == 0o100644, info.filename
            assert info.compress_type == zipfile.ZIP_DEFLATED
    # Nothing of the build machine leaks in: no absolute path of the checkout or the staging folder.
    with zipfile.ZipFile(builds.first[package]) as archive:
        for name in names:
            if not name.endswith("/"):
                assert str(REPO_ROOT).encode() not in archive.read(name), name


@pytest.mark.parametrize("package", PACKAGES)
def test_zip_holds_the_whole_package_at_its_root(builds: Builds, package: str) -> None:
    source = REPO_ROOT / package
    expected = {
        p.relative_to(REPO_ROOT).as_posix()
        for p in source.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    }
    with zipfile.ZipFile(builds.first[package]) as archive:
        shipped = {n for n in archive.namelist() if n.startswith(f"{package}/") and not n.endswith("/")}
        assert shipped == expected
        for name in expected:
            assert archive.read(name) == (REPO_ROOT / name).read_bytes(), name
    assert f"{package}/handler.py" in shipped


def test_provisioner_zip_ships_crhelper_but_not_boto3(builds: Builds) -> None:
    with zipfile.ZipFile(builds.first["provisioner"]) as archive:
        tops = {name.split("/", 1)[0] for name in archive.namelist()}
    assert "crhelper" in tops
    assert "crhelper-2.0.12.dist-info" in tops
    assert not tops & set(LAMBDA_PROVIDED), "boto3 and its dependencies come from the Lambda runtime"


def test_forwarder_zip_ships_extensions_built_for_the_template_platform(builds: Builds) -> None:
    spec = builds.specs["forwarder"]
    abi = "cp" + spec.python_version.replace(".", "")
    machine = {"x86_64": "x86_64", "arm64": "aarch64"}[spec.architecture]
    with zipfile.ZipFile(builds.first["forwarder"]) as archive:
        names = archive.namelist()
        assert f"orjson/orjson.cpython-{abi[2:]}-{machine}-linux-gnu.so" in names
        assert f"isal/isal_zlib.cpython-{abi[2:]}-{machine}-linux-gnu.so" in names
        extensions = [n for n in names if n.endswith(".so")]
        assert f"maxminddb/extension.cpython-{abi[2:]}-{machine}-linux-gnu.so" in names
        # Every compiled file belongs to a pinned dependency and matches Lambda's interpreter and machine.
        assert {n.split("/", 1)[0] for n in extensions} == {"orjson", "isal", "maxminddb"}
        assert all(n.endswith(f".cpython-{abi[2:]}-{machine}-linux-gnu.so") for n in extensions)
        for project in ("orjson", "isal", "maxminddb"):
            wheel_info = next(
                n for n in names if n.startswith(f"{project}-") and n.endswith(".dist-info/WHEEL")
            )
            tags = [
                line.split(": ", 1)[1]
                for line in archive.read(wheel_info).decode().splitlines()
                if ": " in line
            ]
            assert any(tag.startswith(f"{abi}-{abi}-manylinux") and tag.endswith(machine) for tag in tags)


def test_the_template_decides_python_version_and_architecture(builds: Builds, tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        "Parameters:\n"
        "  Arch: {Type: String, Default: arm64}\n"
        "Resources:\n"
        "  Forwarder:\n"
        "    Type: AWS::Lambda::Function\n"
        "    Properties:\n"
        "      Handler: forwarder.handler.handler\n"
        "      Runtime: python3.13\n"
        "      Architectures: [!Ref Arch]\n"
        "      Code: {S3Bucket: !Sub '${AWS::Region}', S3Key: x.zip}\n",
        encoding="utf-8",
    )
    cache = tmp_path / "cache"
    shutil.copytree(builds.cache, cache)
    _build(tmp_path, "arm", cache, offline=False, packages=("forwarder",), template=template, environ={})
    with zipfile.ZipFile(tmp_path / "arm" / "dist" / "forwarder.zip") as archive:
        extensions = [n for n in archive.namelist() if n.endswith(".so")]
        assert "orjson/orjson.cpython-313-aarch64-linux-gnu.so" in extensions
        assert all(n.endswith(".cpython-313-aarch64-linux-gnu.so") for n in extensions)


# --- the handler imports from the zip alone ---------------------------------------------------------

IMPORT_CHECK = r"""
import importlib, json, sys
zip_root, provided, handler = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path[:0] = [zip_root, provided]
module_name, _, attribute = handler.rpartition(".")
module = importlib.import_module(module_name)
function = getattr(module, attribute)
allowed = (zip_root, provided, sys.base_prefix)
strays = sorted(
    name for name, mod in list(sys.modules.items())
    if getattr(mod, "__file__", None) and not mod.__file__.startswith(allowed)
)
try:
    import orjson
    orjson_from = orjson.__file__
except ImportError as exc:
    orjson_from = "unavailable: " + str(exc)
print(json.dumps({
    "callable": callable(function),
    "module_file": module.__file__,
    "strays": strays,
    "boto3_from": getattr(sys.modules.get("boto3"), "__file__", None),
    "orjson": orjson_from,
}))
"""


def _lambda_provided_libraries(root: Path) -> Path:
    """A folder holding only what the Lambda runtime provides (boto3 and its dependencies).

    Lambda puts its own boto3 on sys.path next to the function's code. To emulate that honestly the check
    does not add the virtualenv's site-packages (which also holds crhelper, orjson and every test tool);
    it links just these libraries into a folder of their own, so a dependency the zip forgot to ship
    fails the import exactly as it would on Lambda.
    """
    provided = root / "lambda-runtime"
    provided.mkdir()
    for name in LAMBDA_PROVIDED:
        spec = importlib.util.find_spec(name)
        assert spec and spec.origin, f"{name} must be installed in the test environment"
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (provided / source.name).symlink_to(source, target_is_directory=source.is_dir())
    return provided


def _interpreters(version: str) -> list[str]:
    """Interpreters of exactly the given X.Y version found on this machine (PATH, then pyenv)."""
    candidates = [shutil.which(f"python{version}") or ""]
    candidates += sorted(
        glob.glob(str(Path(sys.base_prefix).parent / f"{version}*" / "bin" / f"python{version}"))
    )
    found = []
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            found.append(candidate)
    return found


@pytest.fixture(scope="module")
def extracted(builds: Builds, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("extracted")
    out = {}
    for package, path in builds.first.items():
        with zipfile.ZipFile(path) as archive:
            archive.extractall(root / package)
        out[package] = root / package
    out["provided"] = _lambda_provided_libraries(root)
    yield out


def _import_handler(python: str, zip_root: Path, provided: Path, handler: str) -> dict[str, object]:
    # -I: ignore PYTHON* variables and the user's site; -S: no site-packages at all. The environment
    # looks like Lambda's (region set, no credentials) and any accidental AWS call at import would fail.
    env = {"PATH": os.environ.get("PATH", ""), "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    started = time.monotonic()
    result = subprocess.run(
        [python, "-I", "-S", "-c", IMPORT_CHECK, str(zip_root), str(provided), handler],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    report: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


@pytest.mark.parametrize("package", PACKAGES)
def test_handler_imports_from_the_zip_in_a_clean_interpreter(
    builds: Builds, extracted: dict[str, Path], package: str
) -> None:
    spec = builds.specs[package]
    report = _import_handler(sys.executable, extracted[package], extracted["provided"], spec.handler)
    assert report["callable"] is True
    assert str(report["module_file"]).startswith(str(extracted[package]))
    assert report["strays"] == []
    if report["boto3_from"] is not None:
        assert str(report["boto3_from"]).startswith(str(extracted["provided"]))
    if package == "forwarder" and sys.version_info[:2] != (3, 12):
        # The zip's orjson is a cp312 extension: on this host it cannot load, and the forwarder's JSON
        # falls back to the standard library, which the successful import above shows.
        assert str(report["orjson"]).startswith("unavailable")


@pytest.mark.parametrize("package", PACKAGES)
def test_handler_imports_on_the_lambda_python_version(
    builds: Builds, extracted: dict[str, Path], package: str
) -> None:
    spec = builds.specs[package]
    interpreters = _interpreters(spec.python_version)
    if not interpreters:
        pytest.skip(f"no python{spec.python_version} on this machine")
    report = _import_handler(interpreters[0], extracted[package], extracted["provided"], spec.handler)
    assert report["callable"] is True
    assert report["strays"] == []
    host_machine = os.uname().machine
    if package == "forwarder" and {"x86_64": "x86_64", "arm64": "aarch64"}[spec.architecture] == host_machine:
        # Same interpreter version and machine as Lambda: the shipped extension must really load.
        assert str(report["orjson"]).startswith(str(extracted["forwarder"] / "orjson"))


def test_the_shipped_orjson_really_loads_on_lambdas_python_and_machine(
    builds: Builds, tmp_path: Path
) -> None:
    """Build for this machine's architecture on python3.12 and load the zip's compiled orjson there."""
    machine = os.uname().machine
    architecture = {"x86_64": "x86_64", "aarch64": "arm64"}.get(machine)
    interpreters = _interpreters("3.12")
    if architecture is None or not interpreters:
        pytest.skip(f"needs python3.12 on x86_64 or aarch64 (have {machine}, {interpreters})")
    template = tmp_path / "template.yaml"
    template.write_text(
        "Resources:\n  F:\n    Type: AWS::Lambda::Function\n    Properties:\n"
        "      Handler: forwarder.handler.handler\n      Runtime: python3.12\n"
        f"      Architectures: [{architecture}]\n",
        encoding="utf-8",
    )
    cache = tmp_path / "cache"
    shutil.copytree(builds.cache, cache)
    _build(tmp_path, "native", cache, offline=False, packages=("forwarder",), template=template, environ={})
    root = tmp_path / "native" / "zip"
    with zipfile.ZipFile(tmp_path / "native" / "dist" / "forwarder.zip") as archive:
        archive.extractall(root)
    provided = _lambda_provided_libraries(tmp_path)
    report = _import_handler(interpreters[0], root, provided, "forwarder.handler.handler")
    assert report["callable"] is True
    assert str(report["orjson"]).startswith(str(root / "orjson"))


# --- template reading and errors ----------------------------------------------------------------------


def test_function_specs_read_runtime_and_architecture_from_the_template() -> None:
    template = build_lambdas.parse_template(
        "Resources:\n"
        "  P:\n"
        "    Type: AWS::Lambda::Function\n"
        "    Properties:\n"
        "      {Handler: provisioner.handler.handler, Runtime: python3.13, Architectures: [arm64]}\n"
        "  F:\n"
        "    Type: AWS::Lambda::Function\n"
        "    Properties: {Handler: forwarder.handler.handler, Runtime: python3.12}\n"
        "  Other:\n"
        "    Type: AWS::Lambda::Function\n"
        "    Properties: {Handler: index.handler, Runtime: nodejs20.x}\n"
    )
    specs = build_lambdas.function_specs(template)
    assert (specs["provisioner"].python_version, specs["provisioner"].architecture) == ("3.13", "arm64")
    assert specs["provisioner"].platform_tag == "manylinux2014_aarch64"
    # Lambda's default architecture when the template does not say.
    assert (specs["forwarder"].python_version, specs["forwarder"].architecture) == ("3.12", "x86_64")
    assert set(specs) == {"provisioner", "forwarder"}


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ("{Handler: forwarder.handler.handler, Runtime: nodejs20.x}", "not a pythonX.Y runtime"),
        (
            "{Handler: forwarder.handler.handler, Runtime: python3.12, Architectures: [s390x]}",
            "exactly one of",
        ),
    ],
)
def test_function_specs_reject_what_cannot_be_built(properties: str, message: str) -> None:
    template = build_lambdas.parse_template(
        f"Resources:\n  F:\n    Type: AWS::Lambda::Function\n    Properties: {properties}\n"
    )
    with pytest.raises(build_lambdas.BuildError, match=message):
        build_lambdas.function_specs(template)


def test_a_missing_handler_module_fails_before_anything_is_installed(tmp_path: Path) -> None:
    (tmp_path / "provisioner").mkdir()
    (tmp_path / "provisioner" / "__init__.py").write_text("")
    with pytest.raises(build_lambdas.BuildError, match=r"Handler 'provisioner.handler.handler' needs"):
        build_lambdas.build_all(
            ["provisioner"],
            template=tmp_path / "absent.yaml",
            source_root=tmp_path,
            dist=tmp_path / "dist",
            cache=tmp_path / "cache",
            staging_root=tmp_path / "staging",
            offline=True,
            environ={},
        )


def test_cli_help_runs_from_the_repo_root() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/release/build_lambdas.py", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "reproducibly" in result.stdout and "--offline" in result.stdout


def test_cli_rejects_an_unknown_package(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_lambdas.main(["nonsense"])
    assert exc.value.code == 2
    assert "unknown package(s) nonsense" in capsys.readouterr().err
