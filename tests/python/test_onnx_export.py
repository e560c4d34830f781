"""tools/export_onnx.py: the ONNX contract, and PyTorch == onnxruntime-node == onnxruntime-web (WASM) on the same tensors.

Uses the untrained placeholder (He-initialised, so activations are O(1)) at 224x224, batch 2 (one knee,
one synthetic pattern), exported with int8 weights as shipped. The PyTorch reference is the exact module
that was exported (BatchNorm folded, convolution weights already dequantised), so the runtimes may
differ from it only by float32 summation order. Measured max|d| / max|output|: <= 3e-7 for oa_logit,
kl_logits, features and ood_score, 2.4e-6 for cam (its 2048-term sum cancels). The bound, 5e-5 of each
output's scale, leaves >= 20x headroom and is still ~100x below what int8 rounding alone changes.
"""
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import export_onnx  # noqa: E402
from parity_inputs import parity_inputs  # noqa: E402

INPUT_SIZE = 224
CAM_SIDE = 5  # mixed10's resolution at 224
MAX_BYTES = 25 * 10**6
RUNTIME_TOLERANCE = 5e-5  # relative to max |output|
FOLDING_TOLERANCE = 2e-5


@pytest.fixture(scope="module", autouse=True)
def few_threads():
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="module")
def placeholder():
    return export_onnx.untrained_placeholder()


@pytest.fixture(scope="module")
def exported(placeholder, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "untrained.onnx"
    return export_onnx.export(*placeholder, INPUT_SIZE, out, name=export_onnx.UNTRAINED_NAME, untrained=True)


def test_contract(exported):
    size = exported.stat().st_size
    print(f"\nuntrained int8 export: {size} bytes ({size / 2**20:.1f} MiB)")
    assert size <= MAX_BYTES
    model = onnx.load(str(exported))
    assert model.opset_import[0].version >= 13
    dims = lambda value: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]  # noqa: E731
    assert [(i.name, dims(i)) for i in model.graph.input] == [("image", ["N", 3, INPUT_SIZE, INPUT_SIZE])]
    assert [(o.name, dims(o)) for o in model.graph.output] == [
        ("oa_logit", ["N"]), ("kl_logits", ["N", 5]), ("features", ["N", 2048]),
        ("cam", ["N", CAM_SIDE, CAM_SIDE]), ("ood_score", ["N"])]
    op_types = [node.op_type for node in model.graph.node]
    assert "BatchNormalization" not in op_types
    assert op_types.count("DequantizeLinear") == 94
    assert {p.key: p.value for p in model.metadata_props}["untrained"] == "true"
    assert model.doc_string.startswith("UNTRAINED")


def test_batch_norm_folding_is_exact(placeholder):
    model, mean, projection = placeholder
    image = torch.from_numpy(parity_inputs(INPUT_SIZE, knees=1))
    folded, _ = export_onnx.prepare_for_export(model, mean, projection, "fp32")
    with torch.no_grad():
        expected = model.eval()(image)
        actual = dict(zip(export_onnx.OUTPUT_NAMES, folded(image)))
    for name in ("oa_logit", "kl_logits", "features", "cam"):
        scale = expected[name].abs().max()
        assert (actual[name] - expected[name]).abs().max() <= FOLDING_TOLERANCE * scale, name


def test_int8_codes_round_to_nearest():
    weight = torch.randn(8, 4, 3, 3)
    q, scale = export_onnx.quantize_per_output_channel(weight)
    assert q.dtype == torch.int8 and q.abs().max() == 127
    assert ((q.float() * scale[:, None, None, None] - weight).abs() <= scale[:, None, None, None] / 2 + 1e-7).all()


def test_pytorch_onnxruntime_node_and_web_agree(placeholder, exported):
    inputs = parity_inputs(INPUT_SIZE, knees=1)
    deployed, _ = export_onnx.prepare_for_export(*placeholder, "int8")
    with torch.no_grad():
        results = {"pytorch": dict(zip(export_onnx.OUTPUT_NAMES, (t.numpy() for t in deployed(torch.from_numpy(inputs)))))}
    for backend in ("node", "web"):
        results[backend] = export_onnx.run_onnx(backend, exported, inputs)

    for name in export_onnx.OUTPUT_NAMES:
        scale = np.abs(results["pytorch"][name]).max()
        assert scale > 1e-2, f"{name} is degenerate ({scale}); parity on near-zero outputs proves nothing"
        for a, b in (("pytorch", "node"), ("pytorch", "web"), ("node", "web")):
            assert results[a][name].shape == results[b][name].shape
            error = np.abs(results[a][name] - results[b][name]).max()
            print(f"{name:10s} {a} vs {b}: max|d| {error:.3g} (scale {scale:.3g})")
            assert error <= RUNTIME_TOLERANCE * scale, f"{name}: {a} vs {b} differ by {error}"


def test_card_update_touches_only_the_file_fields(exported, tmp_path):
    card = tmp_path / "card.json"
    shutil.copy(ROOT / "models" / "oa-inceptionv3.json", card)
    before = card.read_text()
    export_onnx.update_card(card, exported)
    after = json.loads(card.read_text())
    assert after["bytes"] == exported.stat().st_size and len(after["sha256"]) == 64
    assert after["model_file"] == Path(os.path.relpath(exported, tmp_path)).as_posix()
    unchanged = lambda text: [line for line in text.splitlines() if not any(f'"{f}"' in line for f in export_onnx.CARD_FILE_FIELDS)]  # noqa: E731
    assert unchanged(card.read_text()) == unchanged(before)
