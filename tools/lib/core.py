"""The C++ core's Python module (oac_core): one way for every stage to import it."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

from lib.paths import CORE_PYTHON_DIR


class CoreNotBuilt(RuntimeError):
    """oac_core cannot be imported from where it should be."""


def load_core(module_dir: Path = CORE_PYTHON_DIR):
    """oac_core from `module_dir` (default: the build tree's, as `tools/oac build` leaves it). A module of that
    name imported from elsewhere earlier in the process is an error, so a pinned core is never mixed up."""
    if str(module_dir) not in sys.path:
        sys.path.insert(0, str(module_dir))
    try:
        module = importlib.import_module("oac_core")
    except ImportError as error:
        raise CoreNotBuilt(f"the C++ core's Python module oac_core is not importable ({error}); "
                           f"build it first with `tools/oac build` (it lands in {CORE_PYTHON_DIR})") from None
    if module_dir != CORE_PYTHON_DIR and Path(module.__file__).parent != module_dir:
        raise CoreNotBuilt(f"imported oac_core from {module.__file__}, not the one in {module_dir}")
    return module
