"""tools/model/train.py under torchrun: two ranks (gloo, CPU) train a few steps on a tiny manifest at 75 px and stay
identical; rank 0 alone logs and writes the run's files.

The manifest is 16 train and 8 val rows of models/data/eval-split-v1.csv (OAI 224 crops, half with OA), prepared by the build
tree's core; BatchNorms train in batch-statistics mode here (the harder case: each rank normalises its own shard)
and the JPEG and margin augmentations are on for half the samples, so every code path of a v3 step runs.
"""
import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from lib.paths import REPO_ROOT, datasets_dir
from model.inception import OAInceptionV3
from tiny_manifest import write_tiny_manifest

DATASETS = datasets_dir()
TRAIN_SCRIPT = REPO_ROOT / "tools" / "model" / "train.py"
STEPS_PER_EPOCH, EPOCHS = 2, 2


def _model_like(state):
    model = OAInceptionV3()
    model.load_state_dict(state)
    return model


# torchrun itself (its elastic agent needs --redirects 1 --tee 1 with Debian's torch 1.13 on Python 3.11),
# and train.py's own launcher, which gives the ranks the same environment.
# torchrun's --standalone always takes port 29400; a free port keeps the test apart from any other run.
def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


LAUNCHERS = {
    "torchrun": lambda: [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
                         "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{free_port()}",
                         "--redirects", "1", "--tee", "1", str(TRAIN_SCRIPT)],
    "nproc": lambda: [sys.executable, str(TRAIN_SCRIPT), "--nproc", "2"],
}


@pytest.mark.skipif(not (DATASETS / "Osteoarthritis_Dataset").is_dir(), reason="needs the datasets ($OAC_DATASETS)")
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without torch.distributed")
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_two_ranks_stay_identical(tmp_path, launcher):
    manifest = tmp_path / "manifest.csv"
    train_rows, val_rows = write_tiny_manifest(manifest)
    assert train_rows == 16 and val_rows == 8
    work, dumps = tmp_path / "work", tmp_path / "ranks"
    command = LAUNCHERS[launcher]() + ["--run", "ddp", "--work", str(work), "--dump-rank-weights", str(dumps),
               "--datasets", str(DATASETS), "--split", str(manifest), "--device", "cpu",
               "--input-size", "75", "--batch-size", "8", "--epochs", str(EPOCHS), "--init", "random",
               "--freeze-through", "none", "--freeze-bn-stats", "false", "--aug-jpeg", "0.5", "--aug-margins", "0.5",
               "--kl-neighbour-smoothing", "0.1", "--warmup-steps", "2", "--lr-backbone", "1e-3",
               "--checkpoint-every-steps", "1", "--ood-fit-images", "8", "--ood-components", "4", "--threads", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    print(done.stdout[-4000:], done.stderr[-4000:])
    assert done.returncode == 0

    run = work / "train" / "ddp"
    for name in ("train.log", "history.json", "summary.json", "best.pt", "last.pt"):
        assert (run / name).is_file(), name
    last = torch.load(run / "last.pt")
    assert last["state"]["global_step"] == STEPS_PER_EPOCH * EPOCHS and last["state"]["epoch"] == EPOCHS

    ranks = [torch.load(dumps / f"rank{r}.pt") for r in range(2)]
    parameters = [name for name, _ in _model_like(ranks[0]).named_parameters()]
    assert len(parameters) == 94 * 2 + 4  # conv weights, BatchNorm betas, two heads
    for name in parameters:
        assert torch.equal(ranks[0][name], ranks[1][name]), f"{name} differs between the ranks"
        assert torch.equal(ranks[0][name], last["model"][name]), f"{name}: last.pt is not rank 0's final state"
    assert "ood" in torch.load(run / "best.pt")
    log = (run / "train.log").read_text().splitlines()
    assert any("2 rank(s) on cpu, 1 threads each" in line for line in log)
    assert sum("weights on the 2 ranks identical" in line for line in log) == EPOCHS + 1
    assert not any("DIFFER" in line for line in log)
    assert sum(line.split(" ", 1)[1].startswith("validation ") for line in log) == EPOCHS  # rank 0 alone logs
    assert len(json.loads((run / "history.json").read_text())) == EPOCHS
