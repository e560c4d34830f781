"""Static int8 quantisation of the product's ONNX model, so ONNX Runtime computes the backbone in integers.

tools/model/export_onnx.py stores convolution weights in one byte but computes in fp32. This rewrites that graph
into the QDQ format: every backbone convolution reads 8-bit activations and 8-bit weights (symmetric, per
output channel) and writes 8-bit activations, which ONNX Runtime fuses into QLinearConv (and QLinearConcat,
QLinearAveragePool, 8-bit MaxPool) at graph optimisation level "extended" or "all". The integer format
(--format, FORMATS below) decides whether every kernel path computes the same integers: the default keeps
uint8 weights, because x86 kernels without VNNI add pairs of uint8 x int8 products in saturating 16-bit
arithmetic, and full-range int8 weights overflow there (tools/oac quant-formats measures every format):

  - activation ranges are calibrated on real knee radiographs of the training split, turned into tensors by
    the C++ core exactly as the product does (oac_core.prepare), and measured with onnxruntime-node
    (tools/model/activation_ranges.mjs);
  - activations are uint8 with a per-tensor scale and zero point from those ranges (ReLU outputs start at
    0, so their ReLU becomes the clamp of the quantisation itself and is dropped);
  - biases are int32 at scale (input scale x weight scale), as QLinearConv needs;
  - MaxPool keeps its input's quantisation, so it runs on uint8 directly;
  - the heads, the CAM, the OOD projection and the last Concat (which feeds the features) stay fp32;
  - the first convolution's output is the one activation whose 8 bits cost most (tools/oac
    quant-sensitivity: models/quantization-sensitivity.md): at full resolution, with a rare long tail of edge
    responses, its calibrated range makes the steps coarse where most values lie. Its range is narrowed to
    --first-conv-range of the calibrated maximum, so the rare responses above saturate instead. Keeping it in
    fp32 instead (--float-activations, for studies) would let float rounding, which differs between
    onnxruntime-node and WebAssembly, flip the 8-bit values after it: the page and the CLI would disagree.

The graph contract (inputs, outputs, names) is unchanged; only the numbers move by the quantisation error
(tools/bench/bench.mjs reports AUC and max |delta P(OA)| against the fp32-compute model).

usage:
  quantize_onnx.py MODEL.onnx --out MODEL-int8.onnx [--card CARD.json] [--calibration-images N]
                   [--range minmax|percentile] [--format u8s7|u8s8|u8u8|s8s8]
                   [--first-conv-range F] [--float-activations first-conv|none|TENSOR[,TENSOR...]]
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from lib.paths import MODEL_CARD, REPO_ROOT, datasets_dir_if_present
from lib.card import load_card, save_card
from lib.core import load_core
from lib.split_manifest import InputError, load_split
from model.export_onnx import quantize_per_output_channel, update_card
from model.self_test import SelfTestError, write_expectation

RANGE_RUNNER = Path(__file__).with_name("activation_ranges.mjs")
DEFAULT_SPLIT = REPO_ROOT / "models" / "data" / "split.csv"
DEFAULT_CALIBRATION_IMAGES = 64
QUANTIZED_MARK = "static-int8-qdq"
UINT8_LEVELS = 255
# Ops that read uint8 directly once their inputs and output are quantised (QLinearConcat, QLinearAveragePool,
# uint8 MaxPool); a backbone Conv is quantised when its weight is constant and a ReLU follows it.
PASS_THROUGH_OPS = ("Concat", "MaxPool", "AveragePool")
# Weight-rebuilding nodes of export_onnx.py whose inputs are all initializers; folded before quantising.
FOLDABLE_OPS = ("DequantizeLinear", "Cast", "Gather", "Mul", "Identity")




@dataclasses.dataclass(frozen=True)
class IntegerFormat:
    """The integer types a quantised convolution computes in: uint8 or int8 activations, and weights of
    `weights` type spanning +-weight_levels around their zero point."""
    activations: str
    weights: str
    weight_levels: int
    description: str


# x86 CPUs without VNNI multiply uint8 by int8 with an instruction that adds each pair of products into a
# saturating int16: 2 x 255 x 127 overflows it, 2 x 255 x 64 = 32640 does not. VNNI, ARM and WebAssembly
# add in 32 bits. Only a format that never overflows gives the same answer on every CPU.
FORMATS = {
    "u8s7": IntegerFormat("uint8", "int8", 64, "uint8 activations, int8 weights within +-64 (7 bits): a pair of "
                          "products fits 16 bits, so every kernel path computes the same integers"),
    "u8s8": IntegerFormat("uint8", "int8", 127, "uint8 activations, full-range int8 weights (4.2.0): x86 kernels "
                          "without VNNI saturate pairs of products"),
    "u8u8": IntegerFormat("uint8", "uint8", 127, "uint8 activations, uint8 weights around zero point 128: u8s8's "
                          "values, added in 32 bits by every kernel path"),
    "s8s8": IntegerFormat("int8", "int8", 127, "int8 activations, full-range int8 weights"),
}
DEFAULT_FORMAT = "u8u8"
FIRST_CONV_OUTPUT = "first-conv"  # --float-activations' name for the first convolution's output, whatever its tensor
# The share of its calibrated maximum that the first convolution's output range keeps: chosen on the validation
# knees by tools/oac quant-sensitivity (models/quantization-sensitivity.md).
DEFAULT_FIRST_CONV_RANGE = 0.6
UINT8_ZERO_POINT_OF_INT8 = 128


class QuantizationError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Constant folding of the exporter's one-byte weight storage


def evaluate_constant_node(node: onnx.NodeProto, values: list[np.ndarray]) -> np.ndarray:
    attributes = {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}
    if node.op_type == "DequantizeLinear":
        quantized, scale = values[0], values[1]
        zero_point = values[2] if len(values) > 2 else np.zeros_like(scale, dtype=quantized.dtype)
        if scale.ndim == 1:
            axis = attributes.get("axis", 1)
            shape = [1] * quantized.ndim
            shape[axis] = -1
            scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
        return ((quantized.astype(np.int32) - zero_point.astype(np.int32)).astype(np.float32) * scale).astype(np.float32)
    if node.op_type == "Cast":
        return values[0].astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[attributes["to"]])
    if node.op_type == "Gather":
        return np.take(values[0], values[1], axis=attributes.get("axis", 0))
    if node.op_type == "Mul":
        return (values[0] * values[1]).astype(np.result_type(values[0], values[1]))
    return values[0]  # Identity


def fold_constant_weights(graph: onnx.GraphProto) -> None:
    """Replace FOLDABLE_OPS nodes whose inputs are all initializers by initializers holding their result."""
    initializers = {initializer.name: initializer for initializer in graph.initializer}
    kept = []
    for node in graph.node:
        if node.op_type in FOLDABLE_OPS and node.input and all(name in initializers for name in node.input if name):
            values = [numpy_helper.to_array(initializers[name]) for name in node.input if name]
            folded = numpy_helper.from_array(evaluate_constant_node(node, values), node.output[0])
            graph.initializer.append(folded)
            initializers[node.output[0]] = folded
        else:
            kept.append(node)
    used = {name for node in kept for name in node.input}
    for initializer in list(graph.initializer):
        if initializer.name not in used:
            graph.initializer.remove(initializer)
    del graph.node[:]
    graph.node.extend(kept)


# ---------------------------------------------------------------------------------------------
# What to quantise


class Plan:
    """The quantised convolutions (each with the ReLU it absorbs) and the activation tensors to quantise."""

    def __init__(self, model: onnx.ModelProto, float_activations: frozenset[str] = frozenset()) -> None:
        graph = model.graph
        initializers = {initializer.name for initializer in graph.initializer}
        # Only float activations are quantised: a graph that reshapes (mirror averaging) also concatenates
        # int64 shapes, and those Concats are not pass-through ops.
        inferred = onnx.shape_inference.infer_shapes(model).graph
        floats = {value.name for value in (*inferred.input, *inferred.value_info, *inferred.output)
                  if value.type.tensor_type.elem_type == TensorProto.FLOAT}
        consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node)
        relu_of_conv: dict[str, onnx.NodeProto] = {}
        conv_inputs = {node.name: node.input[0] for node in graph.node if node.op_type == "Conv"}
        for node in graph.node:
            after = consumers.get(node.output[0], [])
            if (node.op_type == "Conv" and node.input[1] in initializers
                    and len(after) == 1 and after[0].op_type == "Relu"):
                relu_of_conv[node.name] = after[0]
        quantised_ops = [node for node in graph.node if node.name in relu_of_conv
                         or (node.op_type in PASS_THROUGH_OPS and node.output[0] in floats)]
        # Activations that a quantised op reads; an op's output is quantised only where another quantised op
        # reads it (the last Concat feeds the fp32 heads and stays fp32).
        candidates = {node.input[0] if node.op_type == "Conv" else name
                      for node in quantised_ops for name in node.input if name not in initializers}
        unknown = sorted(set(float_activations) - candidates)
        if unknown:
            raise QuantizationError(f"float activations that the graph does not quantise: {', '.join(unknown)}")
        self.tensors = sorted(candidates - set(float_activations))
        quantised = set(self.tensors)
        # A Conv becomes QLinearConv only with its input and output quantised; one reading a float activation
        # computes in fp32 on its one-byte weights, as the fp32 reference does.
        self.float_convs = {conv for conv, relu in relu_of_conv.items()
                            if relu.output[0] in quantised and conv_inputs[conv] not in quantised}
        self.relu_of_conv = {conv: relu for conv, relu in relu_of_conv.items()
                             if relu.output[0] in quantised and conv_inputs[conv] in quantised}
        if not self.relu_of_conv:
            raise QuantizationError("the model has no Conv + Relu pair with a constant weight; nothing to quantise")
        self.quantised_convs = set(self.relu_of_conv)
        self.absorbed_relus = {relu.name for relu in self.relu_of_conv.values()}
        self.producer_output = {relu.output[0]: relu.input[0] for relu in self.relu_of_conv.values()}
        self.same_range_as_input = {node.output[0]: node.input[0] for node in quantised_ops if node.op_type == "MaxPool"}


# ---------------------------------------------------------------------------------------------
# Calibration


def calibration_tensors(card_path: Path, split_path: Path, count: int) -> np.ndarray:
    """float32 [count,3,S,S]: knees of training-split radiographs spread evenly over the split (sorted by path),
    turned into tensors by the C++ core with the card's preprocessing."""
    core = load_core()
    spec = core.parse_model_card(card_path.read_text())
    datasets = datasets_dir_if_present()
    if datasets is None:
        raise QuantizationError("no dataset folder for calibration images: set OAC_DATASETS")
    rows = sorted((row for row in load_split(split_path) if row["split"] == "train"), key=lambda row: row["path"])
    if len(rows) < count:
        raise QuantizationError(f"{split_path} has {len(rows)} training images; {count} calibration images were asked for")
    tensors = []
    for i in range(count):
        path = datasets / rows[i * len(rows) // count]["path"]
        try:
            knees = core.prepare(path.read_bytes(), spec)
        except (OSError, ValueError) as error:
            raise QuantizationError(f"calibration image {path} cannot be used: {error}") from error
        tensors.append(knees[0]["tensor"])
    return np.stack(tensors).astype(np.float32)


def activation_ranges(model: onnx.ModelProto, tensors: list[str], inputs: np.ndarray) -> dict[str, dict]:
    """Range of each tensor over `inputs`, measured by onnxruntime-node on a copy whose outputs are `tensors`."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    probe.graph.output.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in tensors)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        onnx.save(probe, str(scratch / "probe.onnx"))
        np.save(scratch / "inputs.npy", np.ascontiguousarray(inputs, dtype=np.float32))
        subprocess.run(["node", str(RANGE_RUNNER), str(scratch / "probe.onnx"), str(scratch / "inputs.npy"),
                        str(scratch / "ranges.json")], check=True)
        return json.loads((scratch / "ranges.json").read_text())


def uint8_parameters(low: float, high: float) -> tuple[float, int]:
    """Scale and zero point mapping [low, high] (widened to include 0, so 0 is exact) onto 0..255."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / UINT8_LEVELS if high > low else 1.0
    return float(scale), int(np.clip(round(-low / scale), 0, UINT8_LEVELS))


# ---------------------------------------------------------------------------------------------
# Rewriting into QDQ


def quantize_graph(model: onnx.ModelProto, plan: Plan, parameters: dict[str, tuple[float, int]],
                   integer_format: IntegerFormat) -> None:
    """Rewrites `model` into QDQ; `parameters` are uint8 scales and zero points (int8 activations shift them by 128)."""
    graph = model.graph
    activation_type = np.dtype(integer_format.activations)
    activation_shift = UINT8_ZERO_POINT_OF_INT8 if activation_type == np.int8 else 0
    initializers = {initializer.name: initializer for initializer in graph.initializer}
    new_initializers: list[onnx.TensorProto] = []
    weight_nodes: list[onnx.NodeProto] = []
    dequantized = {name: f"{name}.dequantized" for name in plan.tensors}

    def quantize_dequantize(name: str, source: str) -> list[onnx.NodeProto]:
        scale, zero_point = parameters[name]
        new_initializers.extend([
            numpy_helper.from_array(np.array(scale, np.float32), f"{name}.scale"),
            numpy_helper.from_array(np.array(zero_point - activation_shift, activation_type), f"{name}.zero_point")])
        return [helper.make_node("QuantizeLinear", [source, f"{name}.scale", f"{name}.zero_point"], [f"{name}.quantized"],
                                 name=f"{name}.quantize"),
                helper.make_node("DequantizeLinear", [f"{name}.quantized", f"{name}.scale", f"{name}.zero_point"],
                                 [dequantized[name]], name=f"{name}.dequantize")]

    def quantize_conv_constants(node: onnx.NodeProto, with_bias: bool) -> None:
        weight_name, bias_name = node.input[1], node.input[2] if len(node.input) > 2 and with_bias else ""
        weight = numpy_helper.to_array(initializers[weight_name])
        stored = quantize_per_output_channel(torch.from_numpy(weight.copy()), integer_format.weight_levels)
        weight_scale = stored.scale.numpy().astype(np.float32)
        weight_values, weight_zero_point = stored.q.numpy(), 0
        if integer_format.weights == "uint8":
            weight_zero_point = UINT8_ZERO_POINT_OF_INT8
            weight_values = (weight_values.astype(np.int16) + weight_zero_point).astype(np.uint8)
        node.input[1] = stored_per_channel(f"{node.name}.weight", integer_format.weights, weight_values, weight_scale,
                                           weight_zero_point)
        if bias_name:
            bias_scale = (parameters[node.input[0]][0] * weight_scale).astype(np.float32)
            bias = numpy_helper.to_array(initializers[bias_name])
            node.input[2] = stored_per_channel(f"{node.name}.bias", "int32", np.round(bias / bias_scale).astype(np.int32),
                                               bias_scale)

    def stored_per_channel(name: str, kind: str, values: np.ndarray, scale: np.ndarray, zero_point: int = 0) -> str:
        """A constant stored as integers with one scale per output channel, dequantized in the graph: its name."""
        new_initializers.extend([
            numpy_helper.from_array(values, f"{name}.{kind}"),
            numpy_helper.from_array(scale, f"{name}.scale"),
            numpy_helper.from_array(np.full(len(scale), zero_point, values.dtype), f"{name}.zero_point"),
        ])
        weight_nodes.append(helper.make_node("DequantizeLinear", [f"{name}.{kind}", f"{name}.scale", f"{name}.zero_point"],
                                             [name], name=f"{name}.dequantize", axis=0))
        return name

    graph_inputs = {value.name for value in graph.input}
    nodes: list[onnx.NodeProto] = []
    for name in plan.tensors:
        if name in graph_inputs:
            nodes += quantize_dequantize(name, name)
    for node in graph.node:
        if node.name in plan.absorbed_relus:
            continue  # quantising its output to uint8 with zero point 0 clamps at 0 already
        if node.name in plan.quantised_convs or node.name in plan.float_convs:
            quantize_conv_constants(node, with_bias=node.name in plan.quantised_convs)
        for i, name in enumerate(node.input):
            if name in dequantized:
                node.input[i] = dequantized[name]
        nodes.append(node)
        for name in plan.tensors:
            source = plan.producer_output.get(name, name)
            if source in node.output:
                nodes += quantize_dequantize(name, source)
    del graph.node[:]
    graph.node.extend(weight_nodes + nodes)
    graph.initializer.extend(new_initializers)
    used = {name for node in graph.node for name in node.input}
    for initializer in list(graph.initializer):
        if initializer.name not in used:
            graph.initializer.remove(initializer)


def first_convolution_output(model: onnx.ModelProto) -> str:
    """The activation the network's first convolution writes: its ReLU's output."""
    graph = model.graph
    first = next((node for node in graph.node if node.op_type == "Conv"), None)
    relu = next((node for node in graph.node if first is not None and node.op_type == "Relu"
                 and node.input[0] == first.output[0]), None)
    if relu is None:
        raise QuantizationError("the model's first convolution has no ReLU after it; name the float activations")
    return relu.output[0]


def float_activation_names(model: onnx.ModelProto, spec: str) -> tuple[str, ...]:
    """--float-activations as tensor names: first-conv, none, or a comma-separated list of names."""
    if spec == "none":
        return ()
    return tuple(first_convolution_output(model) if name == FIRST_CONV_OUTPUT else name
                 for name in spec.split(",") if name)


def quantize(model_path: Path, out: Path, card_path: Path, split_path: Path, calibration_images: int,
             range_kind: str, format_name: str = DEFAULT_FORMAT, float_activations: str = "none",
             ranges: dict[str, dict] | None = None, first_conv_range: float = 1.0) -> dict:
    """Quantises `model_path` into `out`. `ranges` (activation_ranges' result over the calibration images) skips
    the calibration pass, for studies that quantise one network many ways."""
    model = onnx.load(str(model_path))
    marks = {prop.key: prop.value for prop in model.metadata_props}
    if marks.get("quantization") == QUANTIZED_MARK:
        raise QuantizationError(f"{model_path} is already statically quantised")
    fold_constant_weights(model.graph)
    kept_float = float_activation_names(model, float_activations)
    plan = Plan(model, frozenset(kept_float))
    if ranges is None:
        ranges = activation_ranges(model, plan.tensors, calibration_tensors(card_path, split_path, calibration_images))
    low_key, high_key = ("min", "max") if range_kind == "minmax" else ("low", "high")
    parameters = {name: uint8_parameters(ranges[name][low_key], ranges[name][high_key]) for name in plan.tensors}
    first_output = first_convolution_output(model)
    if first_output in parameters:
        parameters[first_output] = uint8_parameters(ranges[first_output][low_key],
                                                    first_conv_range * ranges[first_output][high_key])
    for output, source in plan.same_range_as_input.items():
        if output in parameters and source in parameters:
            parameters[output] = parameters[source]
    quantize_graph(model, plan, parameters, FORMATS[format_name])
    source_sha256 = hashlib.sha256(model_path.read_bytes()).hexdigest()
    for key, value in {"quantization": QUANTIZED_MARK, "quantization_format": format_name,
                       "calibration_images": str(calibration_images),
                       "calibration_range": range_kind, "float_activations": ",".join(sorted(kept_float)),
                       "first_conv_range": f"{first_conv_range:g}", "quantized_from_sha256": source_sha256}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return {"convolutions": len(plan.quantised_convs), "activations": len(plan.tensors), "bytes": out.stat().st_size,
            "format": format_name, "float_activations": kept_float, "first_conv_range": first_conv_range}


def convolutions_not_the_same_on_every_cpu(model: onnx.ModelProto) -> list[str]:
    """The quantised convolutions whose integer products an x86 kernel without VNNI may compute otherwise: any
    but uint8 activations with uint8 weights, or with int8 weights within +-64 (onnxruntime shifts int8
    activations to uint8 on x86, so those count as uint8 with full-range weights)."""
    initializers = {initializer.name: numpy_helper.to_array(initializer) for initializer in model.graph.initializer}
    dequantized_by = {node.output[0]: node for node in model.graph.node if node.op_type == "DequantizeLinear"}
    flagged = []
    for node in (node for node in model.graph.node if node.op_type == "Conv"):
        weight_node, input_node = dequantized_by.get(node.input[1]), dequantized_by.get(node.input[0])
        if weight_node is None or weight_node.input[0] not in initializers or input_node is None:
            continue  # computes in fp32
        weights = initializers[weight_node.input[0]]
        activation_zero_point = initializers.get(input_node.input[2]) if input_node is not None else None
        unsigned_activations = activation_zero_point is not None and activation_zero_point.dtype == np.uint8
        within_pair_sum = weights.dtype == np.uint8 or (
            weights.dtype == np.int8 and np.abs(weights.astype(np.int16)).max() <= FORMATS["u8s7"].weight_levels)
        if not (unsigned_activations and within_pair_sum):
            flagged.append(node.name)
    return flagged


def write_compute(card_path: Path, summary: dict) -> None:
    """The card's compute: the integer format and why it was chosen (models/quantization-formats.md), and the
    first convolution's output range (models/quantization-sensitivity.md)."""
    card = load_card(card_path)
    if "compute" in card:
        card["compute"]["integer_format"] = f"{summary['format']}: {FORMATS[summary['format']].description}"
        card["compute"]["first_conv_range"] = summary["first_conv_range"]
        card["compute"].pop("float_activations", None)
        if summary["float_activations"]:
            card["compute"]["float_activations"] = list(summary["float_activations"])
        save_card(card_path, card)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="fp32-compute model from tools/model/export_onnx.py")
    parser.add_argument("--out", type=Path, required=True, help="quantised .onnx to write")
    parser.add_argument("--card", type=Path, default=MODEL_CARD,
                        help="model card giving the preprocessing; a copy describing --out is written beside it "
                             "(same stem, .json)")
    parser.add_argument("--split", type=Path, default=DEFAULT_SPLIT, help="split manifest; calibration uses its training rows")
    parser.add_argument("--calibration-images", type=int, default=DEFAULT_CALIBRATION_IMAGES, metavar="N",
                        help=f"training radiographs for calibration (default {DEFAULT_CALIBRATION_IMAGES})")
    parser.add_argument("--range", choices=("minmax", "percentile"), default="minmax",
                        help="activation range: min/max over all images, or the 99.99th percentile per batch (averaged)")
    parser.add_argument("--format", choices=sorted(FORMATS), default=DEFAULT_FORMAT,
                        help=f"integer types of the convolutions (default {DEFAULT_FORMAT}: "
                             f"{FORMATS[DEFAULT_FORMAT].description})")
    parser.add_argument("--first-conv-range", type=float, default=DEFAULT_FIRST_CONV_RANGE, metavar="F",
                        help=f"share of its calibrated maximum the first convolution's output range keeps (default "
                             f"{DEFAULT_FIRST_CONV_RANGE}; 1: the calibrated range)")
    parser.add_argument("--float-activations", default="none", metavar="first-conv|none|NAMES",
                        help="activations kept in fp32, for studies (default none; first-conv: the first "
                             "convolution's output; or tensor names, comma-separated): the page and the CLI then "
                             "round differently and disagree")
    args = parser.parse_args()
    if not 0 < args.first_conv_range <= 1:
        parser.error("--first-conv-range must be above 0 and at most 1")
    if args.calibration_images < 1:
        parser.error("--calibration-images must be at least 1")
    try:
        summary = quantize(args.model, args.out, args.card, args.split, args.calibration_images, args.range,
                           args.format, args.float_activations, first_conv_range=args.first_conv_range)
        card_copy = args.out.with_suffix(".json")
        if card_copy.resolve() != args.card.resolve():
            shutil.copyfile(args.card, card_copy)
        update_card(card_copy, args.out)
        write_compute(card_copy, summary)
        write_expectation(card_copy)
    except (QuantizationError, SelfTestError, InputError, FileNotFoundError) as error:
        print(f"quantize_onnx: {error}", file=sys.stderr)
        return 1
    print(f"quantized ({summary['format']}) {summary['convolutions']} convolutions and {summary['activations']} activations -> {args.out}: "
          f"{summary['bytes']} bytes; card {card_copy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
