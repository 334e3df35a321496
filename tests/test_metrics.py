"""The distribution metrics on feature sets whose answers are known."""

import numpy as np
import pytest

from cgan_train.metrics import frechet_distance, precision_recall


def _gaussian(count: int, dims: int, seed: int, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, dims)) * scale


def test_frechet_distance_of_a_set_to_itself_is_zero():
    features = _gaussian(2000, 8, seed=0)
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_a_shifted_set_is_the_squared_shift():
    features = _gaussian(2000, 8, seed=0)
    shift = np.arange(8) * 0.5
    assert frechet_distance(features, features + shift) == pytest.approx(np.sum(shift**2), rel=1e-9)


def test_frechet_distance_of_scaled_sets_follows_the_closed_form():
    # Same mean; covariances I and 4I in 4 dims: Tr(I + 4I - 2 * 2I) = 4.
    first = _gaussian(50_000, 4, seed=1)
    second = _gaussian(50_000, 4, seed=2, scale=2.0)
    assert frechet_distance(first, second) == pytest.approx(4.0, abs=0.15)


def test_the_manifold_radius_is_the_distance_to_the_third_nearest_other_point():
    # Real points 0, 1, ..., 99 on a line: the end point 0 has its 3rd neighbour at 3 (radius 3).
    # A sample at -2.5 falls inside that ball and one at -3.5 outside, for k = 3 and no other k;
    # four far away are outside for any k.
    real = np.arange(100, dtype=np.float64).reshape(-1, 1)
    generated = np.array([[-2.5], [-3.5], [1000.0], [1001.0], [1002.0], [1003.0]])
    precision, _ = precision_recall(real, generated)
    assert precision == pytest.approx(1 / 6)


def test_samples_far_from_the_real_data_have_no_precision_and_no_recall():
    real = _gaussian(500, 4, seed=0)
    assert precision_recall(real, real + 100.0) == (0.0, 0.0)


def test_samples_covering_one_of_two_modes_are_precise_but_recall_half():
    mode_a = _gaussian(400, 4, seed=0)
    mode_b = _gaussian(400, 4, seed=1) + 50.0
    real = np.concatenate([mode_a, mode_b])
    generated = _gaussian(800, 4, seed=2)  # all in mode a
    precision, recall = precision_recall(real, generated)
    assert precision > 0.95
    assert 0.45 < recall <= 0.5


def test_the_spread_of_a_figure_is_its_mean_sample_standard_deviation_and_range():
    from cgan_train.metrics import spread

    figure = spread([0.97, 0.98, 0.99])
    assert figure["mean"] == pytest.approx(0.98)
    assert figure["std"] == pytest.approx(0.01)  # n - 1: sqrt((0.01^2 + 0 + 0.01^2) / 2)
    assert (figure["min"], figure["max"], figure["values"]) == (0.97, 0.99, [0.97, 0.98, 0.99])
    once = spread([2.5])
    assert (once["mean"], once["std"], once["min"], once["max"]) == (2.5, None, 2.5, 2.5)
    assert spread([0.5, None])["mean"] is None  # a digit absent from one test set


def test_frechet_distance_of_two_draws_of_one_distribution_is_small_beside_a_shifted_one():
    first, second = _gaussian(5000, 8, seed=0), _gaussian(5000, 8, seed=1)
    assert frechet_distance(first, second) < 0.05 < 1.0 < frechet_distance(first, second + 1.0)
