"""tools/model/train.py's mirror views: predict's mirror averaging is the mean of the two views' logits, the
distillation teacher's targets average the knee with its mirror image, and the distillation loss is smallest where
the student already gives the teacher's probabilities."""
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from model.train import distillation_loss, mirror_averaged_probabilities, predict

SPEC = SimpleNamespace(preprocess=SimpleNamespace(mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25]))


class LopsidedNet(nn.Module):
    """A knee's left half weighs more than its right, so the outputs change when the knee is mirrored."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 1, 1)
        self.kl = nn.Linear(2, 5)
        with torch.no_grad():
            self.kl.weight.copy_(torch.tensor([[2.0, -1.0], [0.5, 1.5], [-1.0, 0.3], [1.2, 1.2], [0.0, -2.0]]))

    def forward(self, x):
        x = self.stem(x)
        half = x.shape[-1] // 2
        features = torch.stack([x[..., :half].mean((1, 2, 3)), x[..., half:].mean((1, 2, 3))], 1)
        return {"oa_logit": 3 * features[:, 0] - features[:, 1], "kl_logits": self.kl(features), "features": features,
                "cam": x[:, 0]}


def planes():
    rng = np.random.default_rng(11)
    return rng.random((3, 16, 16)).astype(np.float16)


def test_a_knee_and_its_mirror_image_get_the_same_targets():
    net = LopsidedNet()
    knee = torch.rand(1, 3, 16, 16)
    with torch.no_grad():  # one view is not mirror-blind
        assert not torch.allclose(net(knee)["kl_logits"], net(knee.flip(-1))["kl_logits"])
    upright = mirror_averaged_probabilities(net, planes(), SPEC)
    mirrored = mirror_averaged_probabilities(net, np.ascontiguousarray(planes()[:, :, ::-1]), SPEC)
    np.testing.assert_allclose(upright[0], mirrored[0], rtol=1e-5)
    np.testing.assert_allclose(upright[1], mirrored[1], rtol=1e-5)
    np.testing.assert_allclose(upright[1].sum(1), 1.0, rtol=1e-5)
    assert upright[0].min() > 0 and upright[0].max() < 1


def test_predict_mirror_averaged_is_the_mean_of_both_views_logits():
    net = LopsidedNet()
    upright = predict(net, planes(), SPEC)
    mirrored = predict(net, np.ascontiguousarray(planes()[:, :, ::-1]), SPEC)
    averaged = predict(net, planes(), SPEC, mirror_average=True)
    assert not np.allclose(upright["kl_logits"], mirrored["kl_logits"])
    for name in ("oa_logit", "kl_logits"):
        np.testing.assert_allclose(averaged[name], (upright[name] + mirrored[name]) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(averaged["features"], upright["features"], rtol=1e-6)


def test_the_student_is_pulled_toward_the_teachers_probabilities():
    oa_target = torch.tensor([0.8, 0.1])
    kl_target = torch.tensor([[0.1, 0.6, 0.2, 0.05, 0.05], [0.7, 0.2, 0.1, 0.0, 0.0]])
    oa_logit = torch.logit(oa_target).requires_grad_()
    kl_logits = torch.log(kl_target.clamp(min=1e-6)).requires_grad_()
    distillation_loss({"oa_logit": oa_logit, "kl_logits": kl_logits}, oa_target, kl_target, 1.0).backward()
    assert oa_logit.grad.abs().max() < 1e-6 and kl_logits.grad.abs().max() < 1e-5
    elsewhere = {"oa_logit": torch.zeros(2), "kl_logits": torch.zeros(2, 5)}
    at_target = {"oa_logit": oa_logit.detach(), "kl_logits": kl_logits.detach()}
    assert distillation_loss(elsewhere, oa_target, kl_target, 1.0) > distillation_loss(at_target, oa_target, kl_target, 1.0)
