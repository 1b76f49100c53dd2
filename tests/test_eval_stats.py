"""Aggregations against loops written here; bootstrap coverage and the paired test's p-values on simulated data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kstest

from neuroclips.metrics.aggregate import aggregate, aggregate_mean_resampled
from neuroclips.metrics.stats import bootstrap_ci, paired_comparison


def _loop_aggregate(v: np.ndarray, how: str) -> tuple[float, float]:
    """The three peers' aggregations, written as plain loops over defined (non-NaN) values."""
    n, p = v.shape
    if how == "per_position":
        means, stds = [], []
        for j in range(p):
            col = [v[i, j] for i in range(n) if not np.isnan(v[i, j])]
            means.append(sum(col) / len(col))
            stds.append(np.sqrt(sum((x - means[-1]) ** 2 for x in col) / len(col)))
        return sum(means) / p, sum(stds) / p
    if how == "per_clip":
        clip = []
        for i in range(n):
            row = [x for x in v[i] if not np.isnan(x)]
            clip.append(sum(row) / len(row))
        m = sum(clip) / n
        return m, np.sqrt(sum((c - m) ** 2 for c in clip) / n)
    pool = [x for x in v.ravel() if not np.isnan(x)]
    m = sum(pool) / len(pool)
    return m, np.sqrt(sum((x - m) ** 2 for x in pool) / len(pool))


@pytest.mark.parametrize("how", ["per_position", "per_clip", "all_pairs"])
def test_each_aggregation_equals_a_loop(how):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(7, 5)) + np.arange(5)  # positions differ, so the stds differ between aggregations
    v[2, 3] = np.nan  # an undefined pair (constant frame) is left out
    value, std = aggregate(v, how)
    ref = _loop_aggregate(v, how)
    assert value == pytest.approx(ref[0], abs=1e-12) and std == pytest.approx(ref[1], abs=1e-12)
    # the bootstrap statistic on the identity draw is the reported value
    assert aggregate_mean_resampled(v, np.arange(7)[None], how)[0] == pytest.approx(value, abs=1e-12)


def test_aggregations_differ_in_spread_not_mean():
    v = np.random.default_rng(1).normal(size=(20, 6)) + np.arange(6)
    means = {h: aggregate(v, h)[0] for h in ("per_position", "per_clip", "all_pairs")}
    stds = {h: aggregate(v, h)[1] for h in ("per_position", "per_clip", "all_pairs")}
    assert np.ptp(list(means.values())) < 1e-12
    assert stds["per_clip"] < stds["per_position"] < stds["all_pairs"]
    with pytest.raises(ValueError, match="aggregation"):
        aggregate(v, "per_frame")


def test_bootstrap_interval_covers_the_true_mean_at_about_the_nominal_rate():
    # 300 simulated test sets of 40 clips x 6 frames; frames of a clip share a clip effect (not independent)
    rng = np.random.default_rng(0)
    true_mean, hits = 0.4, 0
    for s in range(300):
        clip_effect = rng.normal(0, 0.1, (40, 1))
        v = true_mean + clip_effect + rng.normal(0, 0.1, (40, 6))
        lo, hi = bootstrap_ci(v, "per_clip", reps=300, seed=s)
        hits += lo <= true_mean <= hi
    assert 0.89 <= hits / 300 <= 0.99, hits / 300


def test_bootstrap_resamples_clips_not_frames():
    # frame-level resampling would ignore the clip effect and give a far narrower interval
    rng = np.random.default_rng(3)
    v = rng.normal(0, 1, (30, 1)) + rng.normal(0, 0.01, (30, 6))
    lo, hi = bootstrap_ci(v, "per_position", reps=400, seed=0)
    se_clips = v.mean(1).std() / np.sqrt(30)
    assert (hi - lo) == pytest.approx(2 * 1.96 * se_clips, rel=0.3)
    assert bootstrap_ci(v, "per_position", reps=400, seed=0) == (lo, hi)  # seeded


def test_paired_test_p_uniform_for_equal_systems_and_small_for_a_better_one():
    rng = np.random.default_rng(0)
    ps = []
    for s in range(300):
        base = rng.normal(0.3, 0.1, 50)  # clip difficulty, shared by both systems
        a = base + rng.normal(0, 0.05, 50)
        b = base + rng.normal(0, 0.05, 50)
        ps.append(paired_comparison(a, b, reps=50, permutations=300, seed=s).p_value)
    ps = np.array(ps)
    assert kstest(ps, "uniform").pvalue > 0.01 and 0.02 <= (ps < 0.05).mean() <= 0.09
    base = rng.normal(0.3, 0.1, 50)
    a, b = base + rng.normal(0, 0.05, 50), base + 0.05 + rng.normal(0, 0.05, 50)
    r = paired_comparison(a, b, reps=500, permutations=2000, seed=0)
    assert r.p_value < 0.005 and r.ci_low > 0 and r.diff == pytest.approx((b - a).mean())
    assert r.ci_low < 0.05 < r.ci_high and r.n == 50
