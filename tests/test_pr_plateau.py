"""The tiny PR leaves the predict-the-mean plateau (issue #13 item 1; experiments/simulated_benchmark/pr_plateau.md).

Slow: three PR seeds at the demo's PR settings (scale=tiny defaults: batch 8, 6 epochs, OneCycle to max_lr, cached
latents, `batch` temporal window, soft contrastive term) on the small simulated file (100 training and 20
validation clips instead of the demo's 540 and 60, so 13 steps an epoch instead of 68), with a stand-in VAE
fitted for 300 steps instead of 1200. None may end on the plateau: each final val PixCorr must be above the mean
training frame's. It fails today (strict xfail): with the reference head (dropout 0.3) seed 0 ended at 0.107 and with
dropout 0 at 0.113, both under the small file's mean frame (0.321).
"""

from __future__ import annotations

import csv
import json

import pytest

from neuroclips.metrics.mean_frame import mean_frame_val_pixcorr
from tests.conftest import read_summary, run_inprocess

SEEDS = (0, 1, 2)
COMMON = ["scale=tiny", "trainer.enable_progress_bar=false"]


def final_val_pixcorr(tmp_path, name: str) -> float:
    values = {}
    with (tmp_path / "runs" / name / "subj1" / "pr" / "logs" / "metrics.csv").open() as f:
        for row in csv.DictReader(f):
            if row.get("val/pixcorr"):
                values[int(row["epoch"])] = float(row["val/pixcorr"])
    return values[max(values)]


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="issue #13 item 1 is open: no tiny-scale setting tried so far keeps every seed off the plateau "
    "(experiments/simulated_benchmark/pr_plateau.md); remove this mark with the fix",
)
def test_tiny_pr_seeds_leave_the_mean_frame_plateau(sim_copy, tmp_path):
    run_inprocess(["stage=standins", *COMMON, "scale.pr.standin.steps=300"], tmp_path, sim_copy)
    run_inprocess(
        ["stage=targets", *COMMON, "~task.encoders.clip_tokens", "~task.encoders.caption_emb"],
        tmp_path,
        sim_copy,
    )
    finals = {}
    for seed in SEEDS:
        name = f"seed{seed}"
        run_inprocess(["stage=pr", *COMMON, f"seed={seed}", f"name={name}", "logger=csv"], tmp_path, sim_copy)
        finals[seed] = final_val_pixcorr(tmp_path, name)
    config = read_summary(tmp_path, "pr", name=f"seed{SEEDS[0]}")["config"]
    assert config["stage"]["max_epochs"] == 6 and config["datamodule"]["batch_size"] == 8
    baseline = mean_frame_val_pixcorr(sim_copy, config["data"])
    stuck = {seed: round(v, 3) for seed, v in finals.items() if v <= baseline}
    print(json.dumps({"mean_frame": baseline, "final_val_pixcorr": finals}))
    assert not stuck, f"seeds on the plateau (final val PixCorr <= mean frame's {baseline:.3f}): {stuck}"
