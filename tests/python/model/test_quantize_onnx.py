"""tools/model/quantize_onnx.py on a mirror-averaged export: only float activations are quantised (the graph's
reshapes also concatenate int64 shapes), every backbone convolution becomes QDQ, and the int8 graph still
gives a knee and its mirror image the same P(OA) and KL logits. The default format, and the shipped model, compute
the same integers on every CPU; full-range int8 weights are caught by the static check.

Calibration reads a few training radiographs from the shared datasets, as the shipped quantisation does.
"""
import numpy as np
import onnx
import pytest
import torch

from lib.card import load_card
from lib.paths import MODEL_CARD
from model import export_onnx, quantize_onnx
from model.parity_inputs import parity_inputs

INPUT_SIZE = 224
CALIBRATION_IMAGES = 4
CONVOLUTIONS = 94
MIRROR_TOLERANCE = 1e-4  # relative to max |output|: the same integer arithmetic on both halves, float sums aside


@pytest.fixture(scope="module")
def quantised(tmp_path_factory):
    torch.set_num_threads(min(2, torch.get_num_threads()))
    folder = tmp_path_factory.mktemp("quantise")
    source = export_onnx.export(*export_onnx.untrained_placeholder(), INPUT_SIZE, folder / "mirror.onnx",
                                weights="fp32", untrained=True, mirror_average=True)
    out = folder / "mirror-int8.onnx"
    summary = quantize_onnx.quantize(source, out, MODEL_CARD, quantize_onnx.DEFAULT_SPLIT, CALIBRATION_IMAGES, "minmax",
                                     first_conv_range=quantize_onnx.DEFAULT_FIRST_CONV_RANGE)
    return out, summary, source


def first_output_scale(source, quantised_path) -> float:
    """The 8-bit scale of the first convolution's output (named from the fp32 source, whose ReLU the quantiser drops)."""
    first_output = quantize_onnx.first_convolution_output(onnx.load(str(source)))
    initializers = {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(str(quantised_path)).graph.initializer}
    return float(initializers[f"{first_output}.scale"])


def test_the_first_convolutions_output_range_is_narrowed_and_every_convolution_stays_integer(quantised, tmp_path):
    out, summary, source = quantised
    assert summary["convolutions"] == CONVOLUTIONS
    assert summary["first_conv_range"] == quantize_onnx.DEFAULT_FIRST_CONV_RANGE
    calibrated = tmp_path / "calibrated.onnx"
    quantize_onnx.quantize(source, calibrated, MODEL_CARD, quantize_onnx.DEFAULT_SPLIT, CALIBRATION_IMAGES, "minmax")
    narrowed, whole = first_output_scale(source, out), first_output_scale(source, calibrated)
    assert narrowed == pytest.approx(quantize_onnx.DEFAULT_FIRST_CONV_RANGE * whole, rel=1e-6)


def test_a_float_activation_makes_the_convolutions_beside_it_compute_in_fp32(quantised, tmp_path):
    source = quantised[2]
    out = tmp_path / "float-first.onnx"
    summary = quantize_onnx.quantize(source, out, MODEL_CARD, quantize_onnx.DEFAULT_SPLIT, CALIBRATION_IMAGES, "minmax",
                                     float_activations=quantize_onnx.FIRST_CONV_OUTPUT)
    model = onnx.load(str(out))
    first_output = quantize_onnx.first_convolution_output(model)
    assert summary["float_activations"] == (first_output,)
    assert not [node for node in model.graph.node if node.op_type == "QuantizeLinear" and node.input[0] == first_output]
    assert summary["convolutions"] == CONVOLUTIONS - 2
    assert quantize_onnx.convolutions_not_the_same_on_every_cpu(model) == []


def test_only_float_activations_are_quantised(quantised):
    out = quantised[0]
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(out))).graph
    types = {value.name: value.type.tensor_type.elem_type for value in (*graph.input, *graph.value_info)}
    quantise_inputs = [node.input[0] for node in graph.node if node.op_type == "QuantizeLinear"]
    assert quantise_inputs
    assert {types.get(name, onnx.TensorProto.FLOAT) for name in quantise_inputs} == {onnx.TensorProto.FLOAT}
    assert {p.key: p.value for p in onnx.load(str(out)).metadata_props}["quantization"] == quantize_onnx.QUANTIZED_MARK


def test_int8_mirror_graph_gives_a_knee_and_its_mirror_image_the_same_outputs(quantised):
    knees = parity_inputs(INPUT_SIZE, knees=1)
    outputs = export_onnx.run_onnx("node", quantised[0], np.concatenate([knees, np.ascontiguousarray(knees[..., ::-1])]))
    n = len(knees)
    for name in ("oa_logit", "kl_logits"):
        scale = np.abs(outputs[name]).max()
        assert scale > 1e-2, f"{name} is degenerate ({scale})"
        assert np.abs(outputs[name][:n] - outputs[name][n:]).max() <= MIRROR_TOLERANCE * scale, name
    assert np.abs(outputs["cam"][:n] - outputs["cam"][n:, :, ::-1]).max() <= MIRROR_TOLERANCE * np.abs(outputs["cam"]).max()


def test_the_default_format_is_the_same_on_every_cpu_and_full_range_int8_weights_are_caught(quantised, tmp_path):
    out = quantised[0]
    assert quantize_onnx.convolutions_not_the_same_on_every_cpu(onnx.load(str(out))) == []
    source = export_onnx.export(*export_onnx.untrained_placeholder(), INPUT_SIZE, tmp_path / "plain.onnx",
                                weights="fp32", untrained=True)
    saturating = tmp_path / "u8s8.onnx"
    summary = quantize_onnx.quantize(source, saturating, MODEL_CARD, quantize_onnx.DEFAULT_SPLIT, CALIBRATION_IMAGES,
                                     "minmax", "u8s8", float_activations="none")
    assert summary["convolutions"] == CONVOLUTIONS
    assert len(quantize_onnx.convolutions_not_the_same_on_every_cpu(onnx.load(str(saturating)))) == CONVOLUTIONS


def test_the_shipped_model_computes_the_same_on_every_cpu():
    card = load_card(MODEL_CARD)
    shipped = onnx.load(str(MODEL_CARD.parent / card["model_file"]))
    assert {p.key: p.value for p in shipped.metadata_props}["quantization"] == quantize_onnx.QUANTIZED_MARK
    convolutions = [node for node in shipped.graph.node if node.op_type == "Conv"]
    assert len(convolutions) >= CONVOLUTIONS
    assert quantize_onnx.convolutions_not_the_same_on_every_cpu(shipped) == []
