"""The PyTorch conversion of nsfwjs's InceptionV3 computes what TensorFlow.js computes with nsfwjs's own bundle.

TensorFlow.js (pure-JS CPU backend, ~25 s per 299x299 image) runs once per clean build: its outputs are
cached under build/parity/nsfwjs/, keyed by the hash of the inputs, the extracted model and the
reference script, so reruns only run PyTorch.

Tolerances: both sides use bit-identical float32 weights (uint8 dequantised the same way), so the only
difference is float32 summation order inside convolutions. Measured (3 knees + a synthetic pattern):
features max|d| 3.9e-7 with max|f| 0.87, probabilities max|d| 5.4e-7 (on a 0.54/0.43 split, where the
softmax is most sensitive). The bounds leave ~20x headroom for other CPUs' kernels while staying far
below what a wrong mapping (transposed kernel, swapped branch, padding off by one, BN epsilon) gives,
which is >= 1e-2.
"""
import hashlib
import subprocess

import numpy as np
import pytest
import torch

from lib.paths import REPO_ROOT
from model import convert_nsfwjs
from model.parity_inputs import parity_inputs

NSFWJS_INPUT_SIZE = 299
FEATURE_TOLERANCE = 1e-5  # relative to max |feature|
PROBABILITY_TOLERANCE = 1e-5
CACHE_DIR = REPO_ROOT / "build" / "parity" / "nsfwjs"


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Fresh conversion (tests the converter's code, not a possibly stale build/pretrained file)."""
    path = tmp_path_factory.mktemp("nsfwjs") / "inception_v3_nsfwjs.pt"
    convert_nsfwjs.convert(path)
    return path


def reference_outputs(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    digest = hashlib.sha256(inputs.tobytes())
    for file in (convert_nsfwjs.EXTRACTED_DIR / "model.json", convert_nsfwjs.EXTRACTED_DIR / "weights.bin",
                 convert_nsfwjs.REFERENCE_SCRIPT):
        digest.update(file.read_bytes())
    key_file = CACHE_DIR / "key.txt"
    if not (key_file.is_file() and key_file.read_text() == digest.hexdigest()):
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        key_file.unlink(missing_ok=True)
        np.save(CACHE_DIR / "inputs.npy", inputs)
        subprocess.run(["node", str(convert_nsfwjs.REFERENCE_SCRIPT), "run", str(convert_nsfwjs.EXTRACTED_DIR),
                        str(CACHE_DIR / "inputs.npy"), str(CACHE_DIR)], check=True)
        key_file.write_text(digest.hexdigest())
    return np.load(CACHE_DIR / "features.npy"), np.load(CACHE_DIR / "probabilities.npy")


def test_nsfwjs_topology_and_frozen_layers(converted):
    checkpoint = torch.load(converted)
    assert checkpoint["frozen_through"] == "activation_55"
    assert checkpoint["frozen_layer_count"] == 167


def test_pytorch_matches_tensorflow_js(converted):
    torch.set_num_threads(min(2, torch.get_num_threads()))
    inputs = parity_inputs(NSFWJS_INPUT_SIZE)
    expected_features, expected_probabilities = reference_outputs(inputs)

    classifier = convert_nsfwjs.load_nsfwjs_classifier(converted)
    with torch.no_grad():
        features, probabilities = (t.numpy() for t in classifier(torch.from_numpy(inputs)))

    feature_error = np.abs(features - expected_features).max()
    probability_error = np.abs(probabilities - expected_probabilities).max()
    print(f"\n{len(inputs)} inputs: features max|d| {feature_error:.3g} (max|f| {np.abs(expected_features).max():.3g}), "
          f"probabilities max|d| {probability_error:.3g}")
    assert feature_error <= FEATURE_TOLERANCE * np.abs(expected_features).max()
    assert probability_error <= PROBABILITY_TOLERANCE
