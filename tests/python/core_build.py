"""Where the image core's builds and the datasets are, for the core's Python tests.

ctest sets OAC_NATIVE_BUILD_DIR and OAC_WASM_BUILD_DIR (empty when the WebAssembly build is
off); run by hand, the defaults are build/native and build/wasm under the repository root."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CARD = ROOT / "models" / "oa-inceptionv3.json"
NATIVE_BUILD = Path(os.environ.get("OAC_NATIVE_BUILD_DIR") or ROOT / "build" / "native")
_wasm_setting = os.environ.get("OAC_WASM_BUILD_DIR")
WASM_BUILD = (ROOT / "build" / "wasm") if _wasm_setting is None else (Path(_wasm_setting) if _wasm_setting else None)
DATASETS = Path(os.environ.get("OAC_DATASETS") or ROOT.parent / "shared" / "datasets")


def import_core():
    python_dir = str(NATIVE_BUILD / "python")
    if python_dir not in sys.path:
        sys.path.insert(0, python_dir)
    import oac_core
    return oac_core
