"""Seeded stratified splitting and train-only statistics."""

from __future__ import annotations

import numpy as np
import pytest

from wconv.data.splits import channel_stats, stratified_split

# Uneven classes (one with a single member) so rounding per class is really exercised.
uneven = np.random.default_rng(1).permutation(np.repeat(np.arange(6), [7, 13, 50, 1, 29, 100]))


def test_split_is_deterministic_for_a_seed():
    a = stratified_split(uneven, 0.3, seed=4)
    b = stratified_split(uneven, 0.3, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_a_different_seed_gives_a_different_split():
    _, held_a = stratified_split(uneven, 0.3, seed=4)
    _, held_b = stratified_split(uneven, 0.3, seed=5)
    assert not np.array_equal(held_a, held_b)


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.77])
def test_split_is_stratified_disjoint_and_covering(fraction):
    kept, held = stratified_split(uneven, fraction, seed=0)
    assert np.intersect1d(kept, held).size == 0
    assert np.array_equal(np.sort(np.concatenate([kept, held])), np.arange(len(uneven)))
    assert len(held) == round(fraction * len(uneven))
    for c in np.unique(uneven):
        share = fraction * np.sum(uneven == c)
        assert abs(np.sum(uneven[held] == c) - share) < 1.0, (c, share)
    assert kept.dtype == held.dtype == np.int64
    assert np.all(np.diff(kept) > 0) and np.all(np.diff(held) > 0)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_fraction_outside_open_interval_is_rejected(fraction):
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        stratified_split(uneven, fraction, seed=0)


def test_an_empty_side_is_rejected():
    with pytest.raises(ValueError, match="empty part"):
        stratified_split(np.zeros(3, dtype=np.int64), 0.1, seed=0)


def test_channel_stats_match_numpy_on_the_given_images():
    images = np.random.default_rng(0).integers(0, 256, (37, 3, 5, 4), dtype=np.uint8)
    mean, std = channel_stats(images, chunk=8)
    x = images.astype(np.float64) / 255
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std, x.std(axis=(0, 2, 3)), rtol=1e-9)
