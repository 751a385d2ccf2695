"""Build one reproducible Lambda zip per function (dist/provisioner.zip, dist/forwarder.zip).

Each zip holds the function's package at its root plus the runtime dependencies pinned in
lambda-requirements/<package>.txt, installed as wheels for the Lambda platform (CPython version and
architecture read from templates/onboarding.yaml). The same inputs always give the same bytes: entries are
sorted, timestamps, permissions and the deflate level are fixed, and bytecode caches are left out.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = REPO_ROOT / "templates" / "onboarding.yaml"
DEFAULT_DIST = REPO_ROOT / "dist"
DEFAULT_CACHE = REPO_ROOT / "build" / "wheel-cache"
DEFAULT_STAGING = REPO_ROOT / "build" / "staging"
REQUIREMENTS_DIR = REPO_ROOT / "lambda-requirements"

# The packages that become Lambda functions; the template's Handler ("<package>.<module>.<function>")
# says which function resource each one belongs to.
PACKAGES = ("provisioner", "forwarder")
LAMBDA_FUNCTION_TYPES = ("AWS::Lambda::Function", "AWS::Serverless::Function")

# Lambda's defaults when the template says nothing (or is not there yet).
DEFAULT_ARCHITECTURE = "x86_64"
DEFAULT_PYTHON_VERSION = "3.12"
# Lambda's Amazon Linux 2023 runtimes have glibc 2.34; manylinux2014 (glibc 2.17) wheels run there.
PLATFORM_TAGS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}

# Zip timestamps cannot be earlier than 1980-01-01 (MS-DOS date format).
ZIP_MIN_DATE_TIME = (1980, 1, 1, 0, 0, 0)
DEFLATE_LEVEL = 9
FILE_MODE = 0o100644  # regular file, rw-r--r--
DIR_MODE = 0o040755  # directory, rwxr-xr-x
MSDOS_DIRECTORY_FLAG = 0x10
UNIX_CREATE_SYSTEM = 3
EXCLUDED_DIR_NAMES = frozenset({"__pycache__"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")


class BuildError(Exception):
    """The build cannot produce a correct zip; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """What one zip is built for."""

    package: str
    handler: str
    python_version: str
    architecture: str
    origin: str

    @property
    def platform_tag(self) -> str:
        return PLATFORM_TAGS[self.architecture]

    @property
    def requirements(self) -> Path:
        return REQUIREMENTS_DIR / f"{self.package}.txt"


@dataclass(frozen=True, slots=True)
class BuiltZip:
    """A finished zip and its fingerprint."""

    package: str
    path: Path
    sha256: str
    size: int
    entries: int
    wheels_downloaded: bool


# --- template reading -------------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that turns CloudFormation short-form tags (!Ref, !Sub...) into their long form."""


def _construct_cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(
            None, None, f"unexpected YAML node for !{suffix}", node.start_mark
        )
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_cfn_tag)


def parse_template(text: str) -> dict[str, Any]:
    """Parse CloudFormation YAML (short-form intrinsic tags included) into plain dicts and lists."""
    try:
        document = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - _CfnLoader derives from SafeLoader
    except yaml.YAMLError as exc:
        raise BuildError(f"template is not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise BuildError("template is not a YAML mapping")
    return document


def load_template(path: Path) -> dict[str, Any]:
    """Read and parse a CloudFormation template file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BuildError(f"cannot read template {path}: {exc.strerror}") from exc
    return parse_template(text)


def _resolve_parameter(value: Any, parameters: Mapping[str, Any]) -> Any:
    """Resolve `!Ref SomeParameter` to that parameter's Default; other values pass through."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        parameter = parameters.get(value["Ref"])
        if isinstance(parameter, dict) and "Default" in parameter:
            return parameter["Default"]
    return value


def function_specs(template: Mapping[str, Any] | None, origin: str = "template") -> dict[str, FunctionSpec]:
    """Work out runtime and architecture of each packaged function from the template's Lambda resources."""
    found: dict[str, FunctionSpec] = {}
    resources = (template or {}).get("Resources") or {}
    parameters = (template or {}).get("Parameters") or {}
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") not in LAMBDA_FUNCTION_TYPES:
            continue
        properties = resource.get("Properties") or {}
        handler = _resolve_parameter(properties.get("Handler"), parameters)
        if not isinstance(handler, str) or handler.split(".", 1)[0] not in PACKAGES:
            continue
        package = handler.split(".", 1)[0]
        runtime = _resolve_parameter(properties.get("Runtime", ""), parameters)
        if not isinstance(runtime, str) or not runtime.startswith("python3."):
            raise BuildError(
                f"{logical_id}: Runtime {runtime!r} is not a pythonX.Y runtime this build supports"
            )
        architectures = properties.get("Architectures", [DEFAULT_ARCHITECTURE])
        architectures = [_resolve_parameter(a, parameters) for a in architectures]
        if len(architectures) != 1 or architectures[0] not in PLATFORM_TAGS:
            raise BuildError(
                f"{logical_id}: Architectures {architectures!r} must be exactly one of "
                f"{sorted(PLATFORM_TAGS)}"
            )
        spec = FunctionSpec(
            package=package,
            handler=handler,
            python_version=runtime.removeprefix("python"),
            architecture=architectures[0],
            origin=f"{origin} ({logical_id})",
        )
        previous = found.get(package)
        if previous and (previous.python_version, previous.architecture) != (
            spec.python_version,
            spec.architecture,
        ):
            raise BuildError(
                f"two functions ship the {package} package with different runtimes or architectures: "
                f"{previous.origin} and {spec.origin}; one zip cannot serve both"
            )
        found[package] = spec
    return found


def resolve_specs(template_path: Path, packages: Iterable[str]) -> list[FunctionSpec]:
    """Specs for the requested packages; Lambda's defaults when the template is absent or silent."""
    if template_path.exists():
        from_template = function_specs(load_template(template_path), origin=str(_display(template_path)))
    else:
        print(
            f"note: {_display(template_path)} not found; building for python{DEFAULT_PYTHON_VERSION} "
            f"{DEFAULT_ARCHITECTURE}",
            file=sys.stderr,
        )
        from_template = {}
    specs = []
    for package in packages:
        spec = from_template.get(package)
        if spec is None:
            if template_path.exists():
                print(
                    f"note: {_display(template_path)} has no function with Handler {package}.*; building "
                    f"{package} for python{DEFAULT_PYTHON_VERSION} {DEFAULT_ARCHITECTURE}",
                    file=sys.stderr,
                )
            spec = FunctionSpec(
                package=package,
                handler=f"{package}.handler.handler",
                python_version=DEFAULT_PYTHON_VERSION,
                architecture=DEFAULT_ARCHITECTURE,
                origin="defaults",
            )
        specs.append(spec)
    return specs


# --- zip writing ------------------------------------------------------------------------------------


def zip_date_time(environ: Mapping[str, str]) -> tuple[int, int, int, int, int, int]:
    """Timestamp for every entry: SOURCE_DATE_EPOCH when set (UTC), else 1980-01-01 00:00:00."""
    raw = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return ZIP_MIN_DATE_TIME
    try:
        epoch = int(raw)
    except ValueError as exc:
        raise BuildError(f"SOURCE_DATE_EPOCH must be an integer number of seconds, got {raw!r}") from exc
    stamp = time.gmtime(max(epoch, 0))[:6]
    return max(stamp, ZIP_MIN_DATE_TIME)


def _collect_entries(root: Path) -> list[tuple[str, Path | None]]:
    """Every directory (name ending in /) and file under root as (arcname, path), sorted by arcname."""
    entries: list[tuple[str, Path | None]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        current = Path(dirpath)
        dirnames[:] = [d for d in dirnames if d not in EXCLUDED_DIR_NAMES]
        for name in dirnames:
            if (current / name).is_symlink():
                raise BuildError(f"refusing to package symlinked directory {current / name}")
            entries.append(((current / name).relative_to(root).as_posix() + "/", None))
        for name in filenames:
            path = current / name
            if name.endswith(EXCLUDED_SUFFIXES):
                continue
            if path.is_symlink():
                raise BuildError(f"refusing to package symlink {path}")
            entries.append((path.relative_to(root).as_posix(), path))
    entries.sort(key=lambda entry: entry[0])
    return entries


def write_reproducible_zip(
    source_dir: Path, destination: Path, date_time: tuple[int, int, int, int, int, int]
) -> int:
    """Zip everything under source_dir so that the bytes depend only on file names and contents."""
    entries = _collect_entries(source_dir)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for arcname, path in entries:
            info = zipfile.ZipInfo(arcname, date_time=date_time)
            info.create_system = UNIX_CREATE_SYSTEM
            if path is None:
                info.external_attr = (DIR_MODE << 16) | MSDOS_DIRECTORY_FLAG
                archive.writestr(info, b"", compress_type=zipfile.ZIP_STORED)
            else:
                info.external_attr = FILE_MODE << 16
                archive.writestr(
                    info, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=DEFLATE_LEVEL
                )
    os.replace(partial, destination)
    return len(entries)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- dependencies -----------------------------------------------------------------------------------


def _pip_platform_args(spec: FunctionSpec) -> list[str]:
    return [
        "--only-binary=:all:",
        "--platform",
        spec.platform_tag,
        "--implementation",
        "cp",
        "--python-version",
        spec.python_version,
        "--require-hashes",
        "--disable-pip-version-check",
        "--quiet",
    ]


def _run_pip(args: Sequence[str], *, isolated: bool) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if isolated:
        # Installing reads nothing but the cache: no index, no pip.conf, no PIP_* variables (which could
        # add find-links or constraints and so change what lands in the zip).
        env = {k: v for k, v in env.items() if not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
        args = ["--isolated", *args]
    return subprocess.run(
        [sys.executable, "-m", "pip", *args], env=env, capture_output=True, text=True, check=False
    )


def install_from_cache(spec: FunctionSpec, target: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    """Install the pinned wheels into target using only the local wheel cache (no network)."""
    cache.mkdir(parents=True, exist_ok=True)
    return _run_pip(
        [
            "install",
            "--no-index",
            "--find-links",
            str(cache),
            "--target",
            str(target),
            "--no-compile",
            *_pip_platform_args(spec),
            "-r",
            str(spec.requirements),
        ],
        isolated=True,
    )


def download_to_cache(spec: FunctionSpec, cache: Path) -> None:
    """Fetch the pinned wheels for the Lambda platform into the cache (uses the user's pip index settings)."""
    result = _run_pip(
        ["download", "--dest", str(cache), *_pip_platform_args(spec), "-r", str(spec.requirements)],
        isolated=False,
    )
    if result.returncode != 0:
        raise BuildError(
            f"{spec.package}: could not download wheels for {spec.platform_tag} cp{spec.python_version} "
            f"into {_display(cache)}:\n{result.stderr.strip()}"
        )


def _has_requirements(path: Path) -> bool:
    lines = path.read_text(encoding="utf-8").splitlines()
    return any(line.strip() and not line.lstrip().startswith("#") for line in lines)


def install_dependencies(spec: FunctionSpec, target: Path, cache: Path, *, offline: bool) -> bool:
    """Install the function's runtime dependencies into target; True when wheels had to be downloaded."""
    if not spec.requirements.exists():
        raise BuildError(f"{spec.package}: requirements file {_display(spec.requirements)} is missing")
    if not _has_requirements(spec.requirements):
        return False
    result = install_from_cache(spec, target, cache)
    if result.returncode == 0:
        return False
    if offline:
        raise BuildError(
            f"{spec.package}: the wheel cache {_display(cache)} lacks a wheel for {spec.platform_tag} "
            f"cp{spec.python_version} (or a cached wheel does not match its pinned hash); run once "
            f"without --offline to fill it:\n{result.stderr.strip()}"
        )
    download_to_cache(spec, cache)
    shutil.rmtree(target)
    target.mkdir(parents=True)
    result = install_from_cache(spec, target, cache)
    if result.returncode != 0:
        raise BuildError(f"{spec.package}: pip could not install the pinned wheels:\n{result.stderr.strip()}")
    return True


# --- one function -----------------------------------------------------------------------------------


def _check_handler(spec: FunctionSpec, source_root: Path) -> None:
    module, _, function = spec.handler.rpartition(".")
    module_file = source_root / (module.replace(".", "/") + ".py")
    if not function or not module_file.is_file():
        raise BuildError(
            f"{spec.package}: the template's Handler {spec.handler!r} needs {_display(module_file)}, "
            "which does not exist"
        )


def build_function(
    spec: FunctionSpec,
    *,
    source_root: Path,
    dist: Path,
    cache: Path,
    staging_root: Path,
    offline: bool,
    date_time: tuple[int, int, int, int, int, int],
) -> BuiltZip:
    """Stage package + dependencies in a fresh folder and zip it reproducibly."""
    package_dir = source_root / spec.package
    if not (package_dir / "__init__.py").is_file():
        raise BuildError(f"{spec.package}: {_display(package_dir)} is not a Python package")
    _check_handler(spec, source_root)

    staging = staging_root / spec.package
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    downloaded = install_dependencies(spec, staging, cache, offline=offline)
    if (staging / spec.package).exists():
        raise BuildError(f"{spec.package}: a dependency installs a top-level {spec.package!r} as well")
    shutil.copytree(
        package_dir,
        staging / spec.package,
        ignore=shutil.ignore_patterns(*EXCLUDED_DIR_NAMES, *(f"*{s}" for s in EXCLUDED_SUFFIXES)),
    )
    destination = dist / f"{spec.package}.zip"
    entries = write_reproducible_zip(staging, destination, date_time)
    return BuiltZip(
        package=spec.package,
        path=destination,
        sha256=sha256_file(destination),
        size=destination.stat().st_size,
        entries=entries,
        wheels_downloaded=downloaded,
    )


def _display(path: Path) -> Path:
    """Path relative to the working directory when possible, for messages without absolute paths."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def build_all(
    packages: Sequence[str],
    *,
    template: Path = DEFAULT_TEMPLATE,
    source_root: Path = REPO_ROOT,
    dist: Path = DEFAULT_DIST,
    cache: Path = DEFAULT_CACHE,
    staging_root: Path = DEFAULT_STAGING,
    offline: bool = False,
    environ: Mapping[str, str] | None = None,
) -> list[BuiltZip]:
    """Build the zips for the given packages and report each one on stdout."""
    date_time = zip_date_time(os.environ if environ is None else environ)
    built = []
    for spec in resolve_specs(template, packages):
        print(f"{spec.package}: python{spec.python_version} {spec.architecture} [{spec.origin}]")
        result = build_function(
            spec,
            source_root=source_root,
            dist=dist,
            cache=cache,
            staging_root=staging_root,
            offline=offline,
            date_time=date_time,
        )
        source = "downloaded into" if result.wheels_downloaded else "from"
        print(f"  wheels {source} {_display(cache)}")
        print(f"  {_display(result.path)}: {result.size} bytes, {result.entries} entries")
        built.append(result)
    print()
    for result in built:
        print(f"{result.sha256}  {_display(result.path)}")
    return built


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="build_lambdas.py",
        description=(
            "Build dist/provisioner.zip and dist/forwarder.zip reproducibly: each function's package plus "
            "the wheels pinned in lambda-requirements/<package>.txt, installed for the Lambda runtime and "
            "architecture that templates/onboarding.yaml declares (python3.12 x86_64 when it does not). "
            "Wheels are kept in a local cache so later builds need no network; the same inputs always "
            "give the same bytes. Prints the sha256 of each zip."
        ),
        epilog=(
            "Set SOURCE_DATE_EPOCH to stamp the entries with that time instead of 1980-01-01. "
            "Exit status: 0 built, 1 build error, 2 usage error."
        ),
    )
    parser.add_argument(
        "packages",
        nargs="*",
        metavar="PACKAGE",
        help=f"build only these, of {', '.join(PACKAGES)} (default: all)",
    )
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="CloudFormation template")
    parser.add_argument("--dist", type=Path, default=DEFAULT_DIST, help="output folder for the zips")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="wheel cache folder")
    parser.add_argument(
        "--staging", type=Path, default=DEFAULT_STAGING, help="scratch folder, emptied for every build"
    )
    parser.add_argument(
        "--offline", action="store_true", help="never download: fail if the wheel cache lacks a wheel"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.packages) - set(PACKAGES))
    if unknown:
        parser.error(f"unknown package(s) {', '.join(unknown)}; choose from {', '.join(PACKAGES)}")
    packages = args.packages or list(PACKAGES)
    try:
        build_all(
            packages,
            template=args.template,
            dist=args.dist,
            cache=args.cache,
            staging_root=args.staging,
            offline=args.offline,
        )
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
