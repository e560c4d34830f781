"""Import the weights of an exported knee-OA ONNX model (tools/model/export_onnx.py) back into PyTorch's OAInceptionV3.

The export folded every BatchNorm into its convolution (weight W*g, bias beta - mean*g with g = 1/sqrt(var+eps))
and stores the convolution weights in one byte: uint8 indices into a value table times the BatchNorm gain
(Cast, Gather, Mul) or symmetric int8 per output channel (DequantizeLinear). This tool evaluates those
initializer-only nodes in numpy, so each Conv gets the float32 weight the graph itself computes, and writes it
back into the unfolded architecture:

  conv2d_N.weight                       = folded weight (what the ONNX Conv multiplies by)
  batch_normalization_N.bias (beta)     = folded bias
  batch_normalization_N.running_mean    = 0
  batch_normalization_N.running_var     = 1 - eps   (so 1/sqrt(var + eps) is exactly 1.0 in float32)

BatchNormNoScale has no gamma, so in eval mode each BatchNorm is then the identity plus the folded bias and the
PyTorch model computes what the ONNX graph computes (up to float summation order). The individual statistics
the folding multiplied together cannot be recovered from the graph, so these BatchNorms only stand for the
folded bias: continue training with their statistics frozen (tools/model/train.py `--freeze-bn-stats`, as Keras's
fine-tuning guide keeps BatchNorm in inference mode); conv weights and betas remain trainable. The heads
(Gemm) come back as they are; the graph's OOD gate is not imported (tools/model/train.py refits it after training).

usage: import_onnx_weights.py MODEL.onnx [--out CHECKPOINT.pt]
  writes {"model": state dict, "config": {"input_size": S}, "source": {...}}, loadable with `tools/oac train
  --init-from CHECKPOINT.pt` (or pass the .onnx to --init-from directly).
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from lib.paths import REPO_ROOT
from model.inception import OAInceptionV3

BACKBONE_PREFIX = "model.backbone.layers."
# onnx 1.13 added helper.tensor_dtype_to_np_dtype and a later release dropped onnx.mapping: Debian's onnx 1.12 has
# only the mapping, a GPU machine's current onnx only the helper, and training imports the init model on both
numpy_dtype_of = getattr(onnx.helper, "tensor_dtype_to_np_dtype", None) or onnx.mapping.TENSOR_TYPE_TO_NP_TYPE.__getitem__


def _constant_values(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Every tensor computable from initializers alone (the weight-expansion nodes and Constants), in numpy."""
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            values[node.output[0]] = numpy_helper.to_array(onnx.helper.get_attribute_value(node.attribute[0]))
            continue
        if not node.input or not all(name in values for name in node.input if name):
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        x = [values[name] for name in node.input]
        if node.op_type == "Cast":
            out = x[0].astype(numpy_dtype_of(attrs["to"]))
        elif node.op_type == "Gather":
            out = np.take(x[0], x[1], axis=attrs.get("axis", 0))
        elif node.op_type == "Mul":
            out = np.multiply(x[0], x[1])  # float32 * float32 in float32, as ONNX Runtime does
        elif node.op_type == "DequantizeLinear":
            axis = attrs.get("axis", 1)
            shape = [1] * x[0].ndim
            if x[1].ndim == 1:
                shape[axis] = -1
            scale = x[1].reshape(shape) if x[1].ndim else x[1]
            zero = (x[2].reshape(shape) if x[2].ndim else x[2]) if len(x) > 2 else np.zeros((), x[0].dtype)
            out = ((x[0].astype(np.int32) - zero.astype(np.int32)).astype(np.float32) * scale).astype(np.float32)
        else:
            continue
        values[node.output[0]] = out
    return values


def onnx_state_dict(model_file: Path | str) -> tuple[dict[str, torch.Tensor], dict]:
    """(OAInceptionV3 state dict, info) from an exported ONNX model; see the module docstring."""
    proto = onnx.load(str(model_file))
    graph = proto.graph
    values = _constant_values(graph)
    model = OAInceptionV3()
    backbone_graph = model.backbone.graph
    norm_of = {layer.inputs[0]: layer.name for layer in backbone_graph.values() if layer.kind == "batch_normalization"}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    filled = set()

    for node in graph.node:
        if node.op_type != "Conv" or not node.input[1].startswith(BACKBONE_PREFIX):
            continue
        conv = node.input[1][len(BACKBONE_PREFIX):].rsplit(".", 1)[0]
        if conv not in norm_of or len(node.input) < 3:
            raise ValueError(f"{model_file}: Conv {node.name} uses {node.input[1]}, which is not a folded backbone convolution")
        norm = norm_of[conv]
        weight, bias = values[node.input[1]], values[node.input[2]]
        key = f"backbone.layers.{conv}.weight"
        if tuple(weight.shape) != tuple(state[key].shape):
            raise ValueError(f"{model_file}: {conv} weight has shape {weight.shape}, the model expects {tuple(state[key].shape)}")
        eps = np.float32(model.backbone.layers[norm].eps)
        state[key] = torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32))
        state[f"backbone.layers.{norm}.bias"] = torch.from_numpy(bias.astype(np.float32))
        state[f"backbone.layers.{norm}.running_mean"] = torch.zeros(len(bias))
        state[f"backbone.layers.{norm}.running_var"] = torch.full((len(bias),), float(np.float32(1.0) - eps))
        filled |= {key, f"backbone.layers.{norm}.bias", f"backbone.layers.{norm}.running_mean",
                   f"backbone.layers.{norm}.running_var"}

    for node in graph.node:
        if node.op_type != "Gemm" or node.input[1] not in ("model.oa.weight", "model.kl.weight"):
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("transB", 0) != 1 or attrs.get("transA", 0) != 0 or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
            raise ValueError(f"{model_file}: head {node.name} is not a plain Linear (Gemm transB=1)")
        head = node.input[1].split(".")[1]
        state[f"{head}.weight"] = torch.from_numpy(values[node.input[1]].astype(np.float32))
        state[f"{head}.bias"] = torch.from_numpy(values[node.input[2]].astype(np.float32))
        filled |= {f"{head}.weight", f"{head}.bias"}

    learned = {k for k in state if not k.endswith("num_batches_tracked")}
    if learned - filled:
        raise ValueError(f"{model_file}: {len(learned - filled)} tensors not found in the graph, e.g. {sorted(learned - filled)[:3]}")
    # The CAM is the OA head as a 1x1 convolution: its weight must be the imported head's.
    for node in graph.node:
        if node.op_type == "Conv" and node.input[2:3] == ["model.oa.bias"]:
            cam = values[node.input[1]].reshape(state["oa.weight"].shape)
            if not np.array_equal(cam, state["oa.weight"].numpy()):
                raise ValueError(f"{model_file}: the CAM convolution's weight differs from the OA head's")
    metadata = {p.key: p.value for p in proto.metadata_props}
    data = Path(model_file).read_bytes()
    info = {"file": str(model_file), "sha256": hashlib.sha256(data).hexdigest(), "metadata": metadata,
            "input_size": int(metadata.get("input_size", 0)) or None}
    return state, info


def load_onnx_model(model_file: Path | str, dropout: float = 0.0) -> OAInceptionV3:
    state, _ = onnx_state_dict(model_file)
    model = OAInceptionV3(dropout=dropout)
    model.load_state_dict(state)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="exported .onnx (e.g. models/reference/oa-inceptionv3-fp32.onnx)")
    parser.add_argument("--out", type=Path, help="checkpoint to write (default build/pretrained/<model stem>.pt)")
    args = parser.parse_args()
    out = args.out or REPO_ROOT / "build" / "pretrained" / f"{args.model.stem}.pt"
    state, info = onnx_state_dict(args.model)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state, "config": {"input_size": info["input_size"]}, "source": info}, out)
    print(f"imported {len(state)} tensors from {args.model} (sha256 {info['sha256'][:12]}) -> {out}")


if __name__ == "__main__":
    main()
