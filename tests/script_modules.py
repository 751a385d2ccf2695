"""Load a script of scripts/<family>/ as a module, once, for tests of every tier."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"


@functools.cache
def load_script(path: str) -> ModuleType:
    """``load_script("release/publish")``: scripts/release/publish.py, with its folder importable while it
    loads (scripts import their siblings by name)."""
    file = SCRIPTS / f"{path}.py"
    folder = str(file.parent)
    spec = importlib.util.spec_from_file_location(f"_scripts_{file.stem}", file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    finally:
        if added:
            sys.path.remove(folder)
    return module
