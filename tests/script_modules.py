"""Load a script of scripts/<family>/ as a module, once, for tests of every tier."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
COMMON = SCRIPTS / "common"


@functools.cache
def load_script(path: str) -> ModuleType:
    """``load_script("release/publish")``: scripts/release/publish.py, with its folder and scripts/common
    importable while it loads (scripts import their siblings and the shared modules by name)."""
    file = SCRIPTS / f"{path}.py"
    # A shared module goes by the name the scripts import it by, so tests and scripts share one copy.
    name = file.stem if file.parent == COMMON else f"_scripts_{file.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    added = [folder for folder in (str(file.parent), str(COMMON)) if folder not in sys.path]
    sys.path[:0] = added
    try:
        spec.loader.exec_module(module)
    finally:
        for folder in added:
            sys.path.remove(folder)
    return module
