"""Where the repository, the model card and the datasets are: one answer for every tool and test.

tools/lib/paths.mjs gives the same answers to the JavaScript side.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_CARD = REPO_ROOT / "models" / "oa-inceptionv3.json"
# The seed-protocol model's card, which shares the shipped card's preprocessing.
SEED_CARD = REPO_ROOT / "models" / "seed" / "oa-inceptionv3-seed.json"
# The C++ core's pybind11 module, as `tools/oac build` leaves it (tools/oac also puts it on PYTHONPATH).
CORE_PYTHON_DIR = REPO_ROOT / "build" / "native" / "python"
DATASETS_BESIDE_CHECKOUT = REPO_ROOT.parent / "shared" / "datasets"


def datasets_dir() -> Path:
    """`$OAC_DATASETS` (tools/oac sets it), else ../shared/datasets beside the checkout."""
    return Path(os.environ.get("OAC_DATASETS") or DATASETS_BESIDE_CHECKOUT)


def datasets_dir_if_present() -> Path | None:
    """datasets_dir(), or None when $OAC_DATASETS is unset and ../shared/datasets does not exist."""
    if os.environ.get("OAC_DATASETS"):
        return datasets_dir()
    return DATASETS_BESIDE_CHECKOUT if DATASETS_BESIDE_CHECKOUT.is_dir() else None
