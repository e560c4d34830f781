"""tools/model/cached_trunk.py: the trunk cache holds what the frozen trunk computes, and a tiny study runs end to end.

Tiny inputs (75 px, InceptionV3's smallest; a handful of knees) and random weights in place of nsfwjs's, so it takes
seconds and needs neither the converted weights nor the C++ core."""
import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from model import cached_trunk, train
from model.inception import InceptionV3Backbone, OAInceptionV3

SIZE = 75
SPEC = SimpleNamespace(preprocess=SimpleNamespace(mean=[0.5] * 3, std=[0.5] * 3))


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A stand-in for build/pretrained/inception_v3_nsfwjs.pt: random backbone weights, BatchNorm statistics made
    non-trivial so that inference mode and training mode differ."""
    torch.manual_seed(0)
    backbone = InceptionV3Backbone()
    for module in backbone.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("weights") / "backbone.pt"
    torch.save({"backbone": backbone.state_dict()}, path)
    return path


def tiny_knees(train_count=6, val_count=4):
    rng = np.random.default_rng(7)
    count = train_count + val_count
    kl = np.array([0, 1, 2, 3, 4, 2, 0, 2, 1, 3][:count])
    return train.Knees(planes=rng.random((count, SIZE, SIZE)).astype(np.float16), oa=(kl >= 2).astype(np.float32),
                       kl=kl.astype(np.int64), split=np.array(["train"] * train_count + ["val"] * val_count),
                       source=np.array(["oai224"] * count), row=np.arange(count))


def tiny_config(tmp_path, **overrides):
    values = dict(input_size=SIZE, epochs=2, batch_size=3, warmup_steps=1, chunk=4, work=str(tmp_path),
                  views="original,mirror,draw1", mirror_validation=True)
    values.update(overrides)
    return cached_trunk.StudyConfig(**values)


def test_the_trunk_and_the_rest_compose_to_the_whole_network():
    torch.manual_seed(1)
    model = OAInceptionV3().eval()
    image = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        whole = model(image)
        trunk = model.backbone.run_between(image, "input_1", "mixed9")
        parts = model.outputs_from(model.backbone.run_between(trunk, "mixed9", "mixed10"))
    for name in ("oa_logit", "kl_logits", "features"):
        torch.testing.assert_close(parts[name], whole[name], rtol=0, atol=0)


def test_a_layer_inside_a_block_is_not_a_cut():
    with pytest.raises(ValueError, match="not a cut"):
        InceptionV3Backbone().eval().run_between(torch.zeros(1, 64, 9, 9), "conv2d_6", "mixed10")  # in mixed0


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory, random_weights):
    """(config, knees, folder): a cache of every view kind, built once for the tests below"""
    config = tiny_config(tmp_path_factory.mktemp("work"))
    knees = tiny_knees()
    return config, knees, cached_trunk.build_cache(config, knees, SPEC, random_weights)


def test_the_cache_holds_what_the_frozen_trunk_computes(tiny_cache, random_weights):
    config, knees, folder = tiny_cache
    cache = cached_trunk.TrunkCache(folder)
    model = cached_trunk.study_model(config, random_weights).train()  # trunk_output must switch to inference mode
    planes = torch.from_numpy(knees.planes.astype(np.float32))[:, None]
    every = np.arange(len(knees.split))
    expected = {"original": cached_trunk.trunk_output(model, planes, SPEC, config.cut),
                "mirror": cached_trunk.trunk_output(model, torch.flip(planes, dims=[3]), SPEC, config.cut)}
    for view, trunk in expected.items():
        cached = cache.features(view, every)
        assert cached.shape == trunk.shape
        torch.testing.assert_close(cached, trunk.half().float(), rtol=0, atol=0)  # float16 of exactly that
        pooled = cached_trunk.frozen_features(model, cached, config.cut)
        torch.testing.assert_close(cache.features(view, every, pooled=True), pooled.half().float(), rtol=0, atol=0)
    # the mirror is not the original: a cache that ignored the view would fail above, and here
    assert not torch.equal(cache.features("original", every), cache.features("mirror", every))
    # an augmented draw covers the training knees only, and differs from both
    train_rows = np.flatnonzero(knees.split == "train")
    assert cache.covers("draw1", train_rows) and not cache.covers("draw1", every)
    assert not torch.equal(cache.features("draw1", train_rows), cache.features("original", train_rows))
    # rows asked for out of order come back in that order
    torch.testing.assert_close(cache.features("original", every[::-1]), cache.features("original", every).flip(0))
    # building again finds the cache complete and leaves it as it is
    before = (folder / "original.npy").read_bytes()
    assert cached_trunk.build_cache(config, knees, SPEC, random_weights) == folder
    assert (folder / "original.npy").read_bytes() == before


@pytest.mark.parametrize("heads_only", [False, True])
def test_a_tiny_run_trains_scores_and_resumes(tmp_path, tiny_cache, random_weights, heads_only):
    _, knees, folder = tiny_cache
    config = tiny_config(tmp_path, run="tiny", heads_only=heads_only, train_fraction=0.5)
    history = cached_trunk.train_run(config, knees, folder, random_weights)
    assert [e["epoch"] for e in history] == [1, 2]
    assert all(e["train_knees"] == 3 for e in history)
    for entry in history:
        for scores in (entry["as_is"], entry["mirror_averaged"]):
            assert 0.0 <= scores["auc"] <= 1.0 and 0.0 <= scores["kl_acc"] <= 1.0
    saved = json.loads((tmp_path / "runs" / "tiny" / "history.json").read_text())
    assert saved["history"] == history
    # the trained part moved; a frozen layer did not
    checkpoint = torch.load(tmp_path / "runs" / "tiny" / "last.pt")["model"]
    start = cached_trunk.study_model(config, random_weights).state_dict()
    assert not torch.equal(checkpoint["kl.weight"], start["kl.weight"])
    assert torch.equal(checkpoint["backbone.layers.conv2d_1.weight"], start["backbone.layers.conv2d_1.weight"])
    last_block = "backbone.layers.conv2d_94.weight"  # in mixed10
    assert torch.equal(checkpoint[last_block], start[last_block]) == heads_only
    # rerunning finds the run finished; another configuration in the same folder is refused
    assert cached_trunk.train_run(config, knees, folder, random_weights) == history
    with pytest.raises(SystemExit, match="another configuration"):
        cached_trunk.train_run(dataclasses.replace(config, lr_heads=0.5), knees, folder, random_weights)


def test_without_validation_mirrors_a_run_scores_the_knees_as_they_are(tmp_path, random_weights):
    config = tiny_config(tmp_path, views="original", epochs=1, heads_only=True, mirror_validation=False)
    folder = cached_trunk.build_cache(config, tiny_knees(), SPEC, random_weights)
    history = cached_trunk.train_run(config, tiny_knees(), folder, random_weights)
    assert "as_is" in history[0] and "mirror_averaged" not in history[0]


def test_a_run_refuses_views_the_cache_lacks(tmp_path, tiny_cache, random_weights):
    _, knees, folder = tiny_cache
    config = tiny_config(tmp_path, run="draws", views="original,draw2")
    with pytest.raises(SystemExit, match="lacks views"):
        cached_trunk.train_run(config, knees, folder, random_weights)


def test_the_cache_builds_only_the_views_a_recipe_needs():
    knees = tiny_knees()
    assert list(cached_trunk.cache_views(cached_trunk.StudyConfig(views="original"), knees)) == ["original"]
    views = cached_trunk.cache_views(cached_trunk.StudyConfig(views="original", mirror_validation=True), knees)
    assert list(views) == ["original", "mirror"] and views["mirror"].tolist() == np.flatnonzero(knees.split == "val").tolist()
    views = cached_trunk.cache_views(cached_trunk.StudyConfig(views="mirror,draw2"), knees)
    assert list(views) == ["original", "mirror", "draw1", "draw2"] and len(views["mirror"]) == len(knees.split)
    with pytest.raises(SystemExit, match="unknown views"):
        cached_trunk.cache_views(cached_trunk.StudyConfig(views="original,flipped"), knees)


def test_training_fractions_are_nested():
    knees = tiny_knees(train_count=6)
    quarter, half, whole = (set(cached_trunk.training_rows(knees, f, seed=3)) for f in (0.34, 0.5, 1.0))
    assert quarter < half < whole and whole == set(np.flatnonzero(knees.split == "train"))


def test_the_report_shows_each_run_that_has_history(tmp_path, tiny_cache, random_weights, monkeypatch):
    _, knees, folder = tiny_cache
    lever = {"mixup": 0.4, "balanced_sampling": True, "epochs": 2}
    monkeypatch.setattr(cached_trunk, "STUDY_RUNS", (
        ("heads-025", True, 0.5, 2, {}), ("heads-100", True, 1.0, 1, {}), ("heads-100-lever", True, 1.0, 1, lever),
        ("top-100", False, 1.0, 1, {})))
    config = tiny_config(tmp_path, epochs=2)
    for name, heads_only, fraction, epochs, changes in cached_trunk.STUDY_RUNS:
        cached_trunk.train_run(dataclasses.replace(config, **{"run": name, "heads_only": heads_only, "train_fraction": fraction,
                                                              "epochs": epochs, **changes}), knees, folder, random_weights)
    (tmp_path / "runs" / "speed.json").write_text(json.dumps({
        "batch_size": 3, "repeats": 1, "threads": 2, "load_average_before": 1.0, "load_average_after": 1.0,
        "whole_network_augmented": 1.5, "frozen_trunk_recomputed": 2.5, "cached_trunk": 9.5, "cached_heads": 99.5}))
    out = tmp_path / "curves.md"
    cached_trunk.report(config, knees, folder, out)
    text = out.read_text()
    assert "### heads-025: 3 training knees (50%), 2 of 2 epochs" in text
    assert "### top-100: 6 training knees (100%), 1 of 1 epochs" in text
    assert "| whole network, augmented on the fly (`tools/oac train`, v4's recipe) | 1.5 |" in text
    assert "best epoch 1 of 1 run" in text  # the top regime's verdict on epochs
    assert "| heads-100-lever | `" + json.dumps(lever) + "` | heads-100 | 1 (of 2 run, 2 planned) |" in text
    assert "### heads-100-lever: 6 training knees (100%), 2 of 2 epochs; lever" in text  # its epochs, shown
    assert "| heads-100-lever | 6 | " not in text  # but not among the fractions' best epochs
    assert "One seed, 4 validation knees" in text
    assert "- top-100 (6 knees, mixed10 and the heads trained, 1 epoch(s)) against heads-100 (6 knees" in text


def test_balanced_sampling_gives_each_grade_the_same_share():
    kl = np.array([0, 0, 0, 1, 2, 2, -1])
    p = cached_trunk.grade_balanced(kl)
    assert p.sum() == pytest.approx(1.0)
    assert p[:3].sum() == pytest.approx(p[3]) == pytest.approx(p[4:6].sum())


def test_speed_times_every_setting_in_turns(tiny_cache, random_weights):
    config, knees, folder = tiny_cache
    speed = cached_trunk.measure_speed(config, knees, SPEC, folder, batch_size=2, repeats=1, rounds=2,
                                       pretrained=random_weights)
    for name in ("whole_network_augmented", "frozen_trunk_recomputed", "cached_trunk", "cached_heads"):
        assert len(speed["by_round"][name]) == 2 and speed[name] == float(np.median(speed["by_round"][name])) > 0
