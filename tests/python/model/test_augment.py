"""tools/model/train.py's augmentation: a new kind is drawn after the older ones, so runs without it keep
their draws, and a negative is exactly the augmented crop turned over."""
import torch

from model.train import augment


def batch():
    y, x = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    return torch.stack([(x * y), (x + y) / 2, x ** 2, 1 - y])[:, None]


def augmented(**kinds):
    return augment(batch(), torch.Generator().manual_seed(5), **kinds)


def test_negatives_are_the_augmented_crops_turned_over_and_leave_the_other_draws_alone():
    upright = augmented(margins=0.5)
    assert torch.equal(augmented(margins=0.5, negatives=0.0), upright)
    assert torch.allclose(augmented(margins=0.5, negatives=1.0), 1.0 - upright)
    some = augmented(margins=0.5, negatives=0.5)
    turned = [bool(torch.allclose(some[i], 1.0 - upright[i])) for i in range(4)]
    kept = [bool(torch.equal(some[i], upright[i])) for i in range(4)]
    assert all(t != k for t, k in zip(turned, kept))


def test_black_corners_turn_the_crop_and_leave_the_other_draws_alone():
    grey = torch.full((8, 1, 32, 32), 0.7)
    upright = augment(grey, torch.Generator().manual_seed(5), negatives=0.5)
    assert torch.equal(augment(grey, torch.Generator().manual_seed(5), negatives=0.5, black_corners=0.0), upright)
    turned = augment(grey, torch.Generator().manual_seed(5), negatives=0.5, black_corners=1.0)
    corner = lambda x: x[:, 0, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corner(upright) > 0).all()   # the geometry continues the film: no black anywhere
    darkened = (corner(turned) < 0.5 * corner(upright)).any(dim=1)
    assert darkened.sum() >= 6           # all but the nearly unturned ones
    assert (corner(turned) == 0).any()
    centre = (slice(None), 0, slice(12, 20), slice(12, 20))
    assert torch.allclose(turned[centre], upright[centre], atol=0.25)   # the middle of the crop stays where it was
