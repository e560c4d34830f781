"""The lent-GPU command's code path on the CPU, small: `tools/oac gpu-run pack` packs a handful of knees, `gpu-run
train` trains one epoch on the pack alone and leaves float16 weight parts in an $OUT-like folder, `gpu-run join`
makes them a checkpoint that the exporter loads, with the trained weights to float16 precision, and `gpu-run
validate` scores it on the exact tensors."""
import json
import os
import subprocess

import numpy as np
import pytest
import torch

from lib.paths import REPO_ROOT, datasets_dir
from model import gpu_run, train
from model.export_onnx import load_checkpoint
from model.knee_pack import read_pack, write_pack
from tiny_manifest import write_tiny_manifest

OAC = REPO_ROOT / "tools" / "oac"
DEVICE_FILE_LIMIT = 16 * 2 ** 20
DEVICE_FILE_COUNT = 8
TINY_RUN = {"run": "tiny-gpu", "protocol": "clean", "input_size": 75, "init": "random", "freeze_through": "none",
            "epochs": 1, "batch_size": 4, "warmup_steps": 2, "aug_jpeg": 0.5, "aug_margins": 0.5,
            "mixed_precision": True, "ood_fit_images": 8, "ood_components": 4, "threads": 2, "seed": 7}


def oac(*args):
    done = subprocess.run([str(OAC), *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "2"})
    print(done.stdout[-3000:], done.stderr[-3000:])
    assert done.returncode == 0, f"tools/oac {args[0]} {args[1]} failed"
    return done.stdout


@pytest.mark.skipif(not (datasets_dir() / "Osteoarthritis_Dataset").is_dir(), reason="needs the datasets ($OAC_DATASETS)")
def test_a_packed_run_returns_weights_that_join_into_an_exportable_checkpoint(tmp_path):
    manifest, config_file = tmp_path / "manifest.csv", tmp_path / "tiny-gpu.json"
    assert write_tiny_manifest(manifest, train=4, val=2) == (8, 4)
    config_file.write_text(json.dumps({**TINY_RUN, "split": str(manifest)}))
    pack, work, out = tmp_path / "pack", tmp_path / "work", tmp_path / "OUT"

    oac("gpu-run", "pack", "--config", config_file, "--out", pack, "--work", work)
    planes, labels, meta = read_pack(pack)
    exact = np.load(next((work / "cache").glob("knees-75-*.npz")))["planes"].astype(np.float32)
    assert planes.shape == exact.shape == (12, 75, 75) and meta["jpeg_quality"] == 70
    assert list(labels["split"]).count("val") == 4
    assert np.abs(planes.astype(np.float32) - exact).mean() < 4 / 255  # a JPEG of the same crops

    # the datasets are hidden from the run: it must need nothing but the pack
    oac("gpu-run", "train", "--config", config_file, "--pack", pack, "--out", out, "--device", "cpu",
        "--work", work, "--datasets", tmp_path / "no-datasets")
    returned = sorted(out.iterdir())
    assert len(returned) <= DEVICE_FILE_COUNT
    assert all(f.stat().st_size <= DEVICE_FILE_LIMIT for f in returned)
    assert {"train.log", "summary.json", "weights.json"} <= {f.name for f in returned}
    assert "knee pack" in (out / "train.log").read_text()

    joined = tmp_path / "joined.pt"
    oac("gpu-run", "join", out, "--checkpoint", joined)
    model, _, input_size = load_checkpoint(joined)
    assert input_size == 75
    trained = torch.load(work / "train" / "tiny-gpu" / "best.pt", map_location="cpu")
    for name, tensor in model.state_dict().items():
        expected = trained["model"][name]
        if expected.is_floating_point():
            assert torch.equal(tensor, expected.half().float()), name
        else:
            assert torch.equal(tensor, expected), name
    assert torch.equal(torch.load(joined)["ood"]["projection"], trained["ood"]["projection"])
    assert len(json.loads((tmp_path / "history.json").read_text())) == 1  # the exporter's card reads it

    scores = oac("gpu-run", "validate", joined, "--config", config_file, "--work", work)
    assert "| knee pack (the run's own validation) |" in scores and "| exact tensors |" in scores


def test_weight_parts_split_join_and_refuse_a_missing_or_damaged_part(tmp_path, monkeypatch):
    checkpoint = {"model": {"w": torch.randn(300, 1000), "steps": torch.tensor(3)}, "config": {"input_size": 75}}
    torch.save(checkpoint, tmp_path / "best.pt")
    monkeypatch.setattr(gpu_run, "PART_BYTES", 2 ** 18)
    out = tmp_path / "out"
    out.mkdir()
    manifest = gpu_run.write_weight_parts(tmp_path / "best.pt", out)
    assert len(manifest["parts"]) == 3  # 600 KB of float16 in 256 KiB parts
    joined, error = gpu_run.read_weight_parts(out)
    assert error is None and torch.equal(joined["model"]["w"], checkpoint["model"]["w"].half().float())
    assert joined["model"]["steps"].dtype == torch.int64

    part = out / manifest["parts"][1]
    part.write_bytes(part.read_bytes()[:-1])
    assert "not the weights the manifest describes" in gpu_run.read_weight_parts(out)[1]
    part.unlink()
    assert "missing" in gpu_run.read_weight_parts(out)[1]


def test_training_refuses_a_pack_made_for_another_run(tmp_path):
    labels = {"oa": np.zeros(2, np.float32), "kl": np.zeros(2, np.int64), "split": np.array(["train", "val"]),
              "source": np.array(["oai224"] * 2), "row": np.arange(2)}
    meta = {"protocol": "clean", "split": "models/data/eval-split-v1.csv", "core": "", "mean": [0.5] * 3,
            "std": [0.5] * 3}
    write_pack(tmp_path, np.full((2, 75, 75), 0.5, np.float32), labels, meta, quality=90)
    config = train.Config(input_size=224, split="models/data/eval-split-v1.csv")
    with pytest.raises(SystemExit, match="input_size is 75 in the pack, 224 in the config"):
        train.knees_from_pack(tmp_path, config)
    knees, spec, _ = train.knees_from_pack(tmp_path, train.Config(input_size=75, split=config.split))
    assert knees.planes.shape == (2, 75, 75) and spec.preprocess.std == [0.5] * 3
