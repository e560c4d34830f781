"""tools/model/import_onnx_weights.py: the committed fp32 reference model, imported into PyTorch, computes what
onnxruntime-node computes on the same graph (oa_logit, kl_logits, features, cam), and the imported model
is a trainable OAInceptionV3.

Inputs: the sample knee radiographs that exist (parity_inputs) and a synthetic pattern, plus a uniform-noise
image. Measured max|d| / max|output| here: 6.9e-7 for oa_logit, 4.5e-7 for kl_logits, 8.3e-7 for features and
5.4e-7 for cam (float summation order only: the imported weights are the exact float32 values the graph's
Gather/Mul and DequantizeLinear nodes compute). The bound, 2e-5 of each output's scale, is far below the
int8 weight rounding (~1e-3) that a wrong reconstruction would show.
"""
import sys

import numpy as np
import pytest
import torch

from lib.paths import REPO_ROOT
from model import export_onnx, import_onnx_weights
from model.inception import mirror_averaged
from model.parity_inputs import parity_inputs

REFERENCE = REPO_ROOT / "models" / "reference" / "oa-inceptionv3-fp32.onnx"
TOLERANCE = 2e-5  # relative to max |output|
COMPARED = ("oa_logit", "kl_logits", "features", "cam")


@pytest.fixture(scope="module", autouse=True)
def few_threads():
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="module")
def imported():
    state, info = import_onnx_weights.onnx_state_dict(REFERENCE)
    return state, info


@pytest.fixture(scope="module")
def inputs(imported):
    size = imported[1]["input_size"]
    noise = np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    return np.concatenate([parity_inputs(size), noise])


def test_imported_model_reproduces_onnxruntime(imported, inputs):
    model = import_onnx_weights.OAInceptionV3()
    model.load_state_dict(imported[0])
    model.eval()
    # The graph may average each knee with its mirror image (export_onnx.py --mirror-average); so does this side.
    mirrored = imported[1]["metadata"].get(export_onnx.MIRROR_AVERAGE_MARK) == "true"
    run = (lambda image: mirror_averaged(model, image)) if mirrored else model
    with torch.no_grad():
        ours = {k: v.numpy() for k, v in run(torch.from_numpy(inputs)).items()}
        ours_channels_last = run(torch.from_numpy(inputs).contiguous(memory_format=torch.channels_last))
    reference = export_onnx.run_onnx("node", REFERENCE, inputs)
    for name in COMPARED:
        scale = np.abs(reference[name]).max()
        assert scale > 1e-2, name
        error = np.abs(ours[name] - reference[name]).max()
        print(f"{name:10s} PyTorch (imported) vs onnxruntime-node: max|d| {error:.3g} (scale {scale:.3g}, relative {error / scale:.2g})")
        assert ours[name].shape == reference[name].shape
        assert error <= TOLERANCE * scale, f"{name}: differs by {error}"
        assert np.abs(ours_channels_last[name].numpy() - reference[name]).max() <= TOLERANCE * scale, name


def test_every_tensor_is_imported_and_batch_norms_are_identities(imported):
    state, info = imported
    assert info["input_size"] == 224 and len(info["sha256"]) == 64
    model = import_onnx_weights.OAInceptionV3()
    model.load_state_dict(state)  # strict: every key present with the right shape
    for name, module in model.backbone.layers.items():
        if name.startswith("batch_normalization_"):
            assert torch.equal(torch.rsqrt(module.running_var + module.eps), torch.ones_like(module.running_var)), name
            assert not module.running_mean.any(), name
    # trainable: the imported model takes a gradient step like any other
    model.train()
    out = model(torch.zeros(2, 3, 75, 75))
    (out["oa_logit"].sum() + out["kl_logits"].sum()).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_checkpoint_cli_round_trip(tmp_path):
    out = tmp_path / "v2.pt"
    sys.argv = ["import_onnx_weights.py", str(REFERENCE), "--out", str(out)]
    import_onnx_weights.main()
    checkpoint = torch.load(out)
    assert checkpoint["config"]["input_size"] == 224
    model = import_onnx_weights.OAInceptionV3()
    model.load_state_dict(checkpoint["model"])
