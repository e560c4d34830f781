"""The polarity rule's threshold search (tools/data/polarity_rule.py) on scores whose answer is known."""
import numpy as np

from data.polarity_rule import rule_counts


def test_a_negative_is_turned_back_when_both_scores_anti_correlate():
    upright = np.array([[0.9, 0.5], [0.9, 0.05], [0.5, 0.3], [-0.9, -0.3]])
    # Negatives score (-0.9, -0.5), (-0.9, -0.05), (-0.5, -0.3), (0.9, 0.3): the first and third pass 0.5 / 0.1,
    # the second's gradients do not anti-correlate enough; the fourth upright crop is itself turned.
    assert rule_counts(upright, 0.5, 0.1) == (1, 2)
    assert rule_counts(upright, 0.5, 0.0) == (1, 3)
    assert rule_counts(upright, 0.95, 0.0) == (0, 0)
