"""Error bars and paired comparisons over clips (no peer reports these; evaluation.md 3.6 notes Mind-Animator ships a
bootstrap-with-Wilcoxon script).

* ``bootstrap_ci`` -- percentile bootstrap interval of a reported value: resample *clips* (rows) with replacement,
  never frames, because the frames of one clip are not independent; the statistic is the reported value under the
  metric's aggregation (``aggregate.py``), so the interval is about the number in the table.
* ``paired_comparison`` -- two systems scored on the same clips: the mean of the per-clip differences (b - a), its
  paired bootstrap interval (the same clip draws for both systems) and a two-sided sign-flip permutation p-value
  (under H0 "no difference" each clip's difference is symmetric about 0, so its sign is exchangeable).

Everything is seeded and vectorised over the resamples (numpy ``default_rng(seed)``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from neuroclips.metrics.aggregate import _as_2d, _quiet, aggregate_mean_resampled

CI_LEVEL = 0.95
BOOTSTRAP_REPS = 1000
PERMUTATION_REPS = 10000
CHUNK = 256  # resamples per vectorised block: bounds memory at CHUNK x clips x pairs floats


def bootstrap_ci(
    values,
    how: str = "per_clip",
    reps: int = BOOTSTRAP_REPS,
    level: float = CI_LEVEL,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile ``level`` interval (low, high) of the reported value of per-pair ``values`` (clips, pairs)."""
    v = _as_2d(values)
    n = v.shape[0]
    if n < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    stats = np.concatenate(
        [
            aggregate_mean_resampled(v, rng.integers(0, n, (min(CHUNK, reps - start), n)), how)
            for start in range(0, reps, CHUNK)
        ]
    )
    return _percentiles(stats, level)


def _percentiles(stats: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1.0 - level) / 2.0
    with _quiet():
        if np.isnan(stats).all():
            return float("nan"), float("nan")
        lo, hi = np.nanquantile(stats, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


@dataclass(frozen=True)
class PairedResult:
    mean_a: float
    mean_b: float
    diff: float  # mean over clips of (b - a)
    ci_low: float
    ci_high: float
    p_value: float  # two-sided sign-flip permutation test
    n: int  # clips where both systems are defined

    def as_dict(self) -> dict:
        return asdict(self)


def paired_comparison(
    a,
    b,
    reps: int = BOOTSTRAP_REPS,
    permutations: int = PERMUTATION_REPS,
    level: float = CI_LEVEL,
    seed: int = 0,
) -> PairedResult:
    """Compare per-clip values ``a`` and ``b`` (clips,) of two systems on the same clips (row i = clip i in both).

    Clips where either value is NaN are dropped. The p-value counts the observed statistic among the permutations
    ((1 + #{|mean*| >= |mean|}) / (1 + permutations)), so it is never 0.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(
            f"paired comparison: expected the same clips in both systems, found {a.size} and {b.size}."
        )
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    d = b - a
    n = d.size
    if n < 2:
        nan = float("nan")
        return PairedResult(nan, nan, nan, nan, nan, nan, n)
    rng = np.random.default_rng(seed)
    boot = np.concatenate(
        [d[rng.integers(0, n, (min(CHUNK, reps - s), n))].mean(1) for s in range(0, reps, CHUNK)]
    )
    lo, hi = _percentiles(boot, level)
    observed = abs(d.mean())
    # a tolerance keeps permutations that equal the observed mean up to rounding counted as "as extreme"
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))
    extreme = 0
    for s in range(0, permutations, CHUNK):
        signs = rng.integers(0, 2, (min(CHUNK, permutations - s), n)) * 2 - 1
        extreme += int((np.abs((signs * d).mean(1)) >= observed - tol).sum())
    p = (1 + extreme) / (1 + permutations)
    return PairedResult(float(a.mean()), float(b.mean()), float(d.mean()), lo, hi, p, n)
