"""tools/model/head_study.py: the ordinal head's probabilities and the refitted heads on features that hold the grade."""
import numpy as np
import torch

from model import head_study


def test_ordinal_probabilities_are_a_distribution_over_the_grades():
    logits = torch.tensor([[3.0, 1.0, -1.0, -3.0], [-5.0, -6.0, -7.0, -8.0], [9.0, 8.0, 7.0, 6.0]])
    probabilities = head_study.CoralHead.grade_probabilities(logits)
    assert torch.allclose(probabilities.sum(1), torch.ones(3))
    assert probabilities.argmax(1).tolist() == [2, 0, 4]


def test_every_head_learns_grades_that_the_features_hold():
    rng = np.random.default_rng(0)
    grades = torch.from_numpy(rng.integers(0, 5, 600))
    # One feature direction carries the grade (ordinal), the rest is noise.
    features = torch.from_numpy(rng.normal(size=(600, 16)).astype(np.float32) * 0.15)
    features[:, 0] += grades.float()
    weights = torch.ones(5)
    for kind, smoothing in (("softmax", 0.0), ("softmax", 0.1), ("coral", 0.0)):
        head = head_study.fit_head(kind, features, grades, weights, smoothing)
        predicted = head_study.head_grades(kind, head, features)
        assert np.mean(predicted == grades.numpy()) > 0.95, kind
