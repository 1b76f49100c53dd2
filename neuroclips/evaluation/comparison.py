"""Paired comparison of two systems scored on the same clips (``python -m neuroclips.evaluate compare a=DIR b=DIR``).

Per metric: the mean of each system over the clips both have, the mean per-clip difference (b - a), its paired
bootstrap 95 % interval (the same clip draws for both systems) and a two-sided sign-flip permutation p-value
(``neuroclips.metrics.stats.paired_comparison``). The unit is the clip: per-clip values are the mean over a clip's
pairs (frames, frame pairs, or the clip itself), so frames of one clip never count as independent evidence.
"""

from __future__ import annotations

import numpy as np

from neuroclips.metrics.stats import paired_comparison

LOWER_IS_BETTER = ("epe", "mse")  # every other metric: higher is better


def higher_is_better(name: str) -> bool:
    return not name.startswith(LOWER_IS_BETTER)


def compare_per_clip(
    a: dict[str, np.ndarray],
    b: dict[str, np.ndarray],
    labels: dict[str, str],
    reps: int,
    permutations: int,
    level: float,
    seed: int,
) -> dict[str, dict]:
    """{metric: paired result + label} for every metric both systems have; a[name], b[name]: (clips,) per-clip."""
    out = {}
    for name in a:
        if name not in b:
            continue
        r = paired_comparison(a[name], b[name], reps, permutations, level, seed)
        out[name] = {
            **r.as_dict(),
            "label": labels.get(name, name),
            "higher_is_better": higher_is_better(name),
        }
    return out


def comparison_rows(comparison: dict, kind: str) -> tuple[list[str], list[list[str]]]:
    """Markdown/HTML table of one kind's paired comparison."""
    rows = []
    for name, r in comparison["kinds"][kind]["metrics"].items():
        better = "b" if (r["diff"] > 0) == r["higher_is_better"] else "a"
        rows.append(
            [
                name,
                f"{r['mean_a']:.4f}",
                f"{r['mean_b']:.4f}",
                f"{r['diff']:+.4f}",
                f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]",
                f"{r['p_value']:.4f}",
                str(r["n"]),
                ("higher" if r["higher_is_better"] else "lower") + f" is better; {better} ahead",
            ]
        )
    header = [
        "Metric",
        "A",
        "B",
        "B − A",
        f"{comparison['level']:.0%} CI (paired bootstrap)",
        "p (sign-flip)",
        "Clips",
        "Direction",
    ]
    return header, rows
