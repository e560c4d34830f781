"""tools/model/export_onnx.py: the ONNX contract, and PyTorch == onnxruntime-node == onnxruntime-web (WASM) on the same tensors.

Uses the untrained placeholder (He-initialised, so activations are O(1)) at 224x224, batch 2 (one knee,
one synthetic pattern), exported with one-byte weights as shipped: the stem and mixed0 are first snapped to
256-value grids, as nsfwjs's frozen layers are, so both storage paths (value table, int8 DequantizeLinear)
are exercised. The PyTorch reference is the exact module that was exported (BatchNorm folded, weights
already expanded), so the runtimes may differ from it only by float32 summation order.

Measured max|d| / max|output| over all pairs and runs: <= 3.4e-7 for features, <= 4.6e-7 for ood_score, <= 7.8e-7 for kl_logits, <= 2.5e-6 for
oa_logit and <= 3.7e-6 for cam (the OA head's 2048-term sums cancel). The bound, 5e-5 of each output's
scale, leaves >= 13x headroom and is still ~100x below what int8 rounding alone changes.
"""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from lib.paths import MODEL_CARD
from model import export_onnx
from model.parity_inputs import parity_inputs

INPUT_SIZE = 224
CAM_SIDE = 5  # mixed10's resolution at 224
MAX_BYTES = 25 * 10**6
RUNTIME_TOLERANCE = 5e-5  # relative to max |output|
FOLDING_TOLERANCE = 2e-5


@pytest.fixture(scope="module", autouse=True)
def few_threads():
    torch.set_num_threads(min(2, torch.get_num_threads()))


TABLE_LAYERS_THROUGH = "mixed0"


@pytest.fixture(scope="module")
def placeholder():
    model, ood = export_onnx.untrained_placeholder()
    backbone = model.backbone
    for name in backbone.keras_layers[: backbone.keras_index(TABLE_LAYERS_THROUGH) + 1]:
        if name.startswith("conv2d_"):
            weight = backbone.layers[name].weight
            step = (weight.max() - weight.min()) / 255
            with torch.no_grad():
                weight.copy_(weight.min() + torch.round((weight - weight.min()) / step) * step)
    return model, ood


@pytest.fixture(scope="module")
def inputs():
    return parity_inputs(INPUT_SIZE, knees=1)


@pytest.fixture(scope="module")
def exported(placeholder, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "untrained.onnx"
    return export_onnx.export(*placeholder, INPUT_SIZE, out, name=export_onnx.UNTRAINED_NAME, untrained=True)


def contract_dims(value: onnx.ValueInfoProto) -> list:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_contract(exported):
    size = exported.stat().st_size
    print(f"\nuntrained int8 export: {size} bytes ({size / 2**20:.1f} MiB)")
    assert size <= MAX_BYTES
    model = onnx.load(str(exported))
    assert model.opset_import[0].version >= 13
    assert [(i.name, contract_dims(i)) for i in model.graph.input] == [("image", ["N", 3, INPUT_SIZE, INPUT_SIZE])]
    assert [(o.name, contract_dims(o)) for o in model.graph.output] == [
        ("oa_logit", ["N"]), ("kl_logits", ["N", 5]), ("features", ["N", 2048]),
        ("cam", ["N", CAM_SIDE, CAM_SIDE]), ("ood_score", ["N"])]
    op_types = [node.op_type for node in model.graph.node]
    assert "BatchNormalization" not in op_types
    table_layers = 12  # conv2d_1 ... conv2d_12
    assert op_types.count("Gather") == table_layers
    assert op_types.count("DequantizeLinear") == 94 - table_layers
    assert {p.key: p.value for p in model.metadata_props}["untrained"] == "true"
    assert model.doc_string.startswith("UNTRAINED")


def test_batch_norm_folding_is_exact(placeholder, inputs):
    model, ood = placeholder
    image = torch.from_numpy(inputs)
    folded, _ = export_onnx.prepare_for_export(model, ood, "fp32")
    with torch.no_grad():
        expected = model.eval()(image)
        actual = dict(zip(export_onnx.OUTPUT_NAMES, folded(image)))
    for name in ("oa_logit", "kl_logits", "features", "cam"):
        scale = expected[name].abs().max()
        assert (actual[name] - expected[name]).abs().max() <= FOLDING_TOLERANCE * scale, name


def test_compact_weights():
    weight, gain = torch.randn(8, 4, 3, 3), torch.rand(8) + 0.5
    int8 = export_onnx.compact_weight(weight, gain)
    assert isinstance(int8, export_onnx.Int8Weight) and int8.q.dtype == torch.int8 and int8.q.abs().max() == 127
    folded = weight * gain[:, None, None, None]
    assert ((export_onnx.expand(int8) - folded).abs() <= int8.scale[:, None, None, None] / 2 + 1e-6).all()

    on_grid = torch.randint(0, 256, weight.shape) * 0.01 - 1.0
    table = export_onnx.compact_weight(on_grid, gain)
    assert isinstance(table, export_onnx.TableWeight) and table.indices.dtype == torch.uint8
    assert torch.equal(export_onnx.expand(table), on_grid * gain[:, None, None, None])


def test_pytorch_onnxruntime_node_and_web_agree(placeholder, inputs, exported):
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


def test_mirror_averaged_export_averages_a_knee_with_its_mirror_image(placeholder, inputs, exported, tmp_path):
    """Run on a knee and on its mirror image, the mirror-averaged graph gives both the mean of the plain model's
    two outputs (the CAM turned back), and keeps the plain features and OOD score; N stays dynamic."""
    averaged_file = export_onnx.export(*placeholder, INPUT_SIZE, tmp_path / "mirror.onnx", weights="fp32",
                                       mirror_average=True)
    graph = onnx.load(str(averaged_file))
    assert {p.key: p.value for p in graph.metadata_props}[export_onnx.MIRROR_AVERAGE_MARK] == "true"
    assert [contract_dims(o) for o in graph.graph.output] == [contract_dims(o) for o in onnx.load(str(exported)).graph.output]
    pair = np.concatenate([inputs, np.ascontiguousarray(inputs[..., ::-1])])
    averaged = export_onnx.run_onnx("node", averaged_file, pair)
    deployed, _ = export_onnx.prepare_for_export(*placeholder, "fp32")
    with torch.no_grad():
        plain = dict(zip(export_onnx.OUTPUT_NAMES, (t.numpy() for t in deployed(torch.from_numpy(pair)))))
    n = len(inputs)
    mean_cam = (plain["cam"][:n] + plain["cam"][n:, :, ::-1]) / 2
    expected = {
        "oa_logit": np.tile((plain["oa_logit"][:n] + plain["oa_logit"][n:]) / 2, 2),
        "kl_logits": np.tile((plain["kl_logits"][:n] + plain["kl_logits"][n:]) / 2, (2, 1)),
        "cam": np.concatenate([mean_cam, mean_cam[:, :, ::-1]]),
        "features": plain["features"],
        "ood_score": plain["ood_score"],
    }
    for name, value in expected.items():
        scale = np.abs(value).max()
        assert averaged[name].shape == value.shape, name
        assert np.abs(averaged[name] - value).max() <= RUNTIME_TOLERANCE * scale, name
    assert np.abs(plain["oa_logit"][:n] - plain["oa_logit"][n:]).max() > 100 * RUNTIME_TOLERANCE * np.abs(plain["oa_logit"]).max(), \
        "the plain model is mirror-blind on these inputs, so the averaging was not tested"


def test_card_update_touches_only_the_file_fields(exported, tmp_path):
    card = tmp_path / "card.json"
    shutil.copy(MODEL_CARD, card)
    before = card.read_text()
    export_onnx.update_card(card, exported)
    after = json.loads(card.read_text())
    assert after["bytes"] == exported.stat().st_size and len(after["sha256"]) == 64
    assert after["model_file"] == Path(os.path.relpath(exported, tmp_path)).as_posix()
    unchanged = lambda text: [line for line in text.splitlines() if not any(f'"{f}"' in line for f in export_onnx.CARD_FILE_FIELDS)]  # noqa: E731
    assert unchanged(card.read_text()) == unchanged(before)


def test_ood_gate_adds_the_energy_outside_the_subspace():
    """With the weights tools/model/train.py writes, the score is the subspace Mahalanobis distance plus the scaled
    residual ||d||^2 - ||V^T d||^2, computed without V."""
    generator = torch.Generator().manual_seed(0)
    basis, _ = torch.linalg.qr(torch.randn(export_onnx.FEATURE_CHANNELS, 8, generator=generator, dtype=torch.float64))
    variances = torch.linspace(4.0, 0.5, 8, dtype=torch.float64)
    residual_scale = 0.25
    mean = torch.randn(export_onnx.FEATURE_CHANNELS, generator=generator, dtype=torch.float64)
    gate = export_onnx.OodGate(mean.float(), (basis / variances.sqrt()).float(), (1 - residual_scale * variances).float(),
                               residual_scale)
    features = mean + torch.randn(3, export_onnx.FEATURE_CHANNELS, generator=generator, dtype=torch.float64)
    centred = features - mean
    inside = centred @ basis
    expected = ((inside ** 2 / variances).sum(1) + residual_scale * ((centred ** 2).sum(1) - (inside ** 2).sum(1))).sqrt()
    assert torch.allclose(gate.score(features.float()), expected.float(), rtol=1e-4)
    assert torch.allclose(export_onnx.OodGate.mahalanobis(gate.mean, gate.projection).score(features.float()),
                          (inside ** 2 / variances).sum(1).sqrt().float(), rtol=1e-4)
