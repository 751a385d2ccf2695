"""`make test` on a fresh clone: offline-safe linters and a warning-free install."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.licenses import canonicalize_license_expression
from packaging.requirements import Requirement
from packaging.version import Version

from .template_model import REPO

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov's own venv is built by `make test` (cfn-checkov)")
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_checkov_runs_without_network_noise() -> None:
    """checkov fetches guideline mappings unless told not to; offline that printed a 60-line traceback."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", "cfn-checkov"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    assert "WARNI" not in output  # checkov's own log prefix for warnings
    assert "Failed checks: 0" in output


def test_license_is_an_spdx_string() -> None:
    """A TOML table for `project.license` makes setuptools warn on every install (deprecated in PEP 639)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    license_ = project["project"]["license"]
    assert isinstance(license_, str)
    assert canonicalize_license_expression(license_) == license_
    # SPDX strings need setuptools 77 or newer in the build environment.
    (setuptools,) = (
        Requirement(text)
        for text in project["build-system"]["requires"]
        if Requirement(text).name == "setuptools"
    )
    assert not setuptools.specifier.contains(Version("76.9"))


def test_the_editable_install_prints_no_warning_of_ours(tmp_path: Path) -> None:
    """`make venv` installs the project editable; setuptools warned about its layout on every install."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    result = subprocess.run(
        [*pip, "install", "--quiet", "--no-deps", "--editable", str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # pip's own notes about this machine's package index configuration are not the project's.
    ours = [line for line in result.stderr.splitlines() if line.strip() and "WARNING: Location" not in line]
    assert ours == []


def _shipped_pins(requirements: Path) -> list[Requirement]:
    """The `name==version` pins of a hash-pinned requirements file (continuation lines hold the hashes)."""
    pins = []
    for line in requirements.read_text().splitlines():
        text = line.split("#", 1)[0].strip().removesuffix("\\").strip()
        if text and not text.startswith("--"):
            pins.append(Requirement(text))
    return pins


def test_a_plain_install_gets_every_library_the_forwarder_zip_ships() -> None:
    """`pip install alb-log-onboarding` must run as fast as the Lambda: orjson and isal are not an extra."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    dependencies = {Requirement(text).name: Requirement(text) for text in project["dependencies"]}
    pins = _shipped_pins(REPO / "lambda-requirements" / "forwarder.txt")
    assert {pin.name for pin in pins} >= {"orjson", "isal"}
    for pin in pins:
        assert pin.name in dependencies, f"{pin.name} ships in forwarder.zip but is not a project dependency"
        (version,) = (spec.version for spec in pin.specifier)
        assert dependencies[pin.name].specifier.contains(version), (pin, dependencies[pin.name])
    assert "fast" not in project.get("optional-dependencies", {})
