"""Where the image core's builds are, for the Python tests of the core (tests/python, tests/dicom).

ctest sets OAC_NATIVE_BUILD_DIR and OAC_WASM_BUILD_DIR (empty when the WebAssembly build is
off); run by hand, the defaults are build/native and build/wasm under the repository root."""

import os
import sys
from pathlib import Path

from lib.paths import REPO_ROOT

NATIVE_BUILD = Path(os.environ.get("OAC_NATIVE_BUILD_DIR") or REPO_ROOT / "build" / "native")
_wasm_setting = os.environ.get("OAC_WASM_BUILD_DIR")
WASM_BUILD = (REPO_ROOT / "build" / "wasm") if _wasm_setting is None else (Path(_wasm_setting) if _wasm_setting else None)


def import_core():
    python_dir = str(NATIVE_BUILD / "python")
    if python_dir not in sys.path:
        sys.path.insert(0, python_dir)
    import oac_core
    return oac_core
