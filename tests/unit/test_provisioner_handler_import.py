"""Importing the handler talks to nobody: no clients, no region needed, no crhelper setup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_creates_nothing_and_needs_no_aws_settings() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_CONFIG_FILE"] = "/nonexistent"
    env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
    code = (
        "import botocore.client, sys\n"
        "created = []\n"
        "original = botocore.client.ClientCreator.create_client\n"
        "def spy(self, *a, **k):\n"
        "    created.append(a[0] if a else k.get('service_name'))\n"
        "    return original(self, *a, **k)\n"
        "botocore.client.ClientCreator.create_client = spy\n"
        "import provisioner.handler as h\n"
        "assert h._helper is None and h._clients is None\n"
        "assert created == [], created\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
