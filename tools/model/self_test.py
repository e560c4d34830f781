"""The model card's known-answer self-test: what the model must output for a probe the core makes from the card.

The worker and the CLI (web/engine.js runSelfTest) run the probe when their session is created and refuse to
score a knee when the outputs are off by more than the tolerance, since then the runtime computes the model
otherwise than the card was calibrated for (an x86 int8 kernel that saturates, a new backend, a broken build).

The expected outputs come from onnxruntime-web's WASM kernels, whose integer arithmetic uses no CPU-specific
instruction, so they are the same on every machine that writes them. The tolerances are far above the float
rounding that separates exact kernel paths (summation order: about 1e-5 here) and far below what a kernel
that saturates changes (tools/oac quant-formats measures both).

usage:
  self_test.py [--card CARD.json] [--write]
    without --write: compares onnxruntime-node on this machine with the card's expectation and says which
    CPU features it has; exit 0 when it passes, 2 when not
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from lib.core import load_core
from lib.card import insert_after, load_card, save_card
from lib.paths import MODEL_CARD
from model.export_onnx import run_onnx

CHECKED_OUTPUTS = ("oa_logit", "kl_logits", "ood_score")
# Absolute tolerances: a logit within 0.01 moves P(OA) by at most 0.0025; the OOD score spans tens.
TOLERANCE = {"oa_logit": 0.01, "kl_logits": 0.01, "ood_score": 0.05}
PROBE = "preprocess.localise.template made a tensor like any crop by the core (oac::self_test_tensor)"
MEASURED_ON = "onnxruntime-web WASM, one thread (integer kernels without CPU-specific instructions): tools/model/self_test.py"
CHECKED_ON = ("x86-64 with AVX-512 VNNI and AVX-VNNI (onnxruntime-node), x86-64 with AVX2 and no VNNI (onnxruntime-node "
              "under qemu-x86_64 -cpu Haswell) and Chromium's WebAssembly (onnxruntime-web), by ctest's cli_one_answer "
              "and web_browser; models/quantization-formats.md")
CPU_FEATURES_OF_INTEREST = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


class SelfTestError(Exception):
    pass


def model_of(card_path: Path) -> tuple[dict, Path]:
    card = load_card(card_path)
    if not card.get("model_file"):
        raise SelfTestError(f"{card_path} names no model_file")
    model_file = card_path.parent / card["model_file"]
    if hashlib.sha256(model_file.read_bytes()).hexdigest() != card.get("sha256"):
        raise SelfTestError(f"{model_file} does not match the sha256 of {card_path}")
    return card, model_file


def probe_outputs(card_path: Path, backend: str) -> dict[str, float | list[float]]:
    """The checked outputs of the card's model on the probe, run by onnxruntime-node or -web."""
    core = load_core()
    _, model_file = model_of(card_path)
    probe = core.self_test_tensor(core.parse_model_card(card_path.read_text()))
    outputs = run_onnx(backend, model_file, probe[None])
    return {"oa_logit": float(outputs["oa_logit"].reshape(-1)[0]),
            "kl_logits": [float(value) for value in outputs["kl_logits"].reshape(-1)],
            "ood_score": float(outputs["ood_score"].reshape(-1)[0])}


def largest_excess(got: dict, expected: dict) -> tuple[str, float]:
    """The output furthest outside its tolerance, as a multiple of the tolerance (<= 1 passes)."""
    ratios = {name: float(np.max(np.abs(np.asarray(got[name]) - np.asarray(expected[name])))) / TOLERANCE[name]
              for name in CHECKED_OUTPUTS}
    name = max(ratios, key=ratios.get)
    return name, ratios[name]


def write_expectation(card_path: Path) -> dict:
    card, _ = model_of(card_path)
    self_test = {"probe": PROBE, "model_sha256": card["sha256"], "expected": probe_outputs(card_path, "web"),
                 "tolerance": TOLERANCE, "measured_on": MEASURED_ON, "checked_on": CHECKED_ON}
    anchor = "compute" if "compute" in card else "outputs"
    save_card(card_path, insert_after(card, anchor, "self_test", self_test))
    return self_test


def cpu_features() -> list[str]:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return []
    return [feature for feature in CPU_FEATURES_OF_INTEREST if feature in flags]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--card", type=Path, default=MODEL_CARD, help="model card (default: the shipped one)")
    parser.add_argument("--write", action="store_true", help="write the card's self_test from onnxruntime-web")
    args = parser.parse_args()
    try:
        if args.write:
            written = write_expectation(args.card)
            print(f"self_test of {args.card}: {json.dumps(written['expected'])}")
            return 0
        card, _ = model_of(args.card)
        if card.get("self_test", {}).get("model_sha256") != card["sha256"]:
            raise SelfTestError(f"{args.card} has no self_test for its model; run with --write")
        got = probe_outputs(args.card, "node")
    except (SelfTestError, OSError, ValueError) as error:
        print(f"self_test: {error}", file=sys.stderr)
        return 1
    name, excess = largest_excess(got, card["self_test"]["expected"])
    verdict = "passes" if excess <= 1 else "FAILS"
    print(f"self-test {verdict} on onnxruntime-node, CPU features {' '.join(cpu_features()) or 'none of interest'}: "
          f"the furthest output, {name}, is at {excess:.3g} x its tolerance")
    return 0 if excess <= 1 else 2


if __name__ == "__main__":
    sys.exit(main())
