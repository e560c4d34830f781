"""The polarity rule's fit (tools/data/polarity_rule.py) on measures whose answer is known."""
import numpy as np

from data.polarity_rule import fit_weights, rule_counts, threshold_for


def test_the_fit_weighs_the_measure_that_tells_upright_from_negative():
    rng = np.random.default_rng(4)
    # the first measure is always positive upright (so always negative in a negative); the second is noise
    upright = np.stack([rng.uniform(0.2, 1.0, 400), rng.normal(0.0, 1.0, 400)], 1)
    weights = fit_weights(upright)
    assert weights[0] > 5 * abs(weights[1])
    assert rule_counts(upright, weights, threshold_for(upright @ weights, 0)) == (0, 400)


def test_the_threshold_turns_at_most_the_allowed_upright_crops_and_stops_halfway():
    scores = np.array([-3.0, -1.0, 0.5, 2.0, 4.0])
    assert threshold_for(scores, 0) == 3.5    # halfway from -3 - 1 to -3: turns none of them
    assert threshold_for(scores, 1) == 2.0    # halfway between -3 and -1: turns the first
    assert threshold_for(scores, 2) == 0.0    # the third already scores above 0
    weights = np.array([1.0])
    # upright scores -3..4; their negatives 3..-4: at threshold 2 the rule turns -3 upright and the negatives of 4 and 2
    assert rule_counts(scores[:, None], weights, 2.0) == (1, 2)
