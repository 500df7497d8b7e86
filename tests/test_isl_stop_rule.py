"""ISL GAN stop rule: the official ``stop_train_GAN`` decisions, by hand and on random loss histories."""
import math
import random

import pytest

from ssml_lib.mining import gan_should_stop

NAN = float("nan")

# (losses, round, expected) worked out by hand from the official rule
TRUTH_TABLE = [
    ([0.5] * 9, 0, False),                                # round 0 needs ten epochs
    ([0.5] * 9, 1, False),                                # later rounds: the latest equals the recent low
    ([0.5] * 10, 0, False),                               # a flat history keeps its minimum in view
    ([0.5] + [0.9] * 9, 0, False),                        # the latest (0.9) is the lowest of the last three
    ([0.5] + [0.9] * 7 + [0.8, 0.95], 0, True),           # 0.5 long gone, the latest is not the recent low
    ([0.5] + [0.9] * 7 + [0.8, 1.2], 0, False),           # round 0: the latest loss is above 1
    ([0.5] + [0.9] * 7 + [0.8, 1.2], 1, True),            # ... which only matters in round 0
    ([2.0] + [1.5] * 9, 1, False),                        # the minimum is still above 1
    ([1.0, 1.3, 1.2, 1.25], 1, True),                     # a minimum of exactly 1 counts as converged
    ([0.3, 0.9, 0.8, 0.7], 1, False),                     # still falling
    ([0.3, 0.9, 0.7, 0.7], 1, False),                     # the latest ties the recent low
    ([0.3, 0.7, 0.9, 0.8], 1, True),                      # the minimum 0.3 is outside the last three
    ([0.3, 0.9, 0.8, 0.85], 1, True),
    ([0.5, 0.9, 0.6, 0.7, 0.8], 1, True),                 # unique minimum left the window
    ([0.5, 0.9, 0.5, 0.7, 0.8], 1, False),                # the minimum came back: training goes on
    ([0.5, 0.9, 0.5, 0.7, 0.8, 0.9], 1, True),            # ... until its last copy leaves the window
    ([0.5, 0.9], 1, False),                               # under four epochs never stop
    ([0.5, 0.9, 0.95], 1, False),
    ([0.5, 0.9, 0.95, 0.97], 1, True),
    ([], 1, False),
    ([0.5, 0.9, NAN, 0.8], 1, True),                      # NaN makes the minimum NaN, as numpy.min does
    ([0.5, NAN, 0.9, 0.8, 0.7], 1, False),                # ... unless the latest is the recent low
    ([3.0] * 200, 0, True),                               # the epoch cap
]


@pytest.mark.parametrize("losses,round_index,expected", TRUTH_TABLE)
def test_truth_table(losses, round_index, expected):
    assert gan_should_stop(losses, round_index) is expected


def test_epoch_cap_and_round0_minimum_are_parameters():
    assert gan_should_stop([0.5] * 5, 0, max_epochs=5)
    assert not gan_should_stop([0.5, 0.9, 0.95, 0.97], 0)
    assert gan_should_stop([0.5, 0.9, 0.95, 0.97], 0, min_epochs_round0=4)


def _restated(losses, round_index):
    """The rule restated on its own, NaN handled as a separate case."""
    n = len(losses)
    if n == 0 or (round_index == 0 and n < 10):
        return False
    has_nan = any(math.isnan(v) for v in losses)
    if not has_nan and min(losses) > 1.0:
        return False
    if round_index == 0 and losses[-1] > 1.0:
        return False
    window = losses[-3:]
    if not any(math.isnan(v) for v in window) and losses[-1] == min(window):
        return False
    return has_nan or min(losses) not in window


def test_random_histories_agree_with_a_restatement():
    rng = random.Random(0)
    values = [0.4, 0.7, 0.9, 1.0, 1.1, 1.6]  # a small set, so ties and repeated minima are common
    stops = 0
    for _ in range(5000):
        losses = [rng.choice(values) for _ in range(rng.randint(1, 16))]
        if rng.random() < 0.05:
            losses[rng.randrange(len(losses))] = NAN
        r = rng.randint(0, 2)
        got = gan_should_stop(losses, r)
        assert got == _restated(losses, r), (losses, r)
        stops += got
    assert 500 < stops < 4500  # both answers well represented
