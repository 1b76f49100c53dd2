"""The tiny PR leaves its predict-the-mean plateau (issue: the demo's blurry column came out a flat mean frame).

Three PR seeds at the demo's PR settings (experiment=demo: scale=tiny, lr, batch, `batch` window, cached latents,
the default `scale.pr.net.low_level_norm`) on the small simulated file, each for a few epochs: every seed's final
validation PixCorr must beat the mean training frame's. The record at the demo's data and 6 epochs is
experiments/simulated_benchmark/pr_plateau.md.
"""

from __future__ import annotations

import csv

import h5py
import numpy as np
import pytest
import torch

from tests.conftest import run_cli

pytestmark = pytest.mark.slow

COMMON = ["experiment=demo", "trainer.enable_progress_bar=false", "logger=csv"]


def mean_frame_val_pixcorr(data_file, val_rows) -> float:
    from neuroclips.metrics.pixcorr import pixcorr

    with h5py.File(data_file) as f:
        frames = f["stimuli/train/frames"][:]
    train = np.setdiff1d(np.arange(len(frames)), val_rows)
    mean = np.rint(frames[train].astype(np.float64).mean(axis=(0, 1))).astype(np.uint8)
    truth = torch.from_numpy(frames[np.sort(val_rows)].reshape(-1, *frames.shape[2:]))
    return float(pixcorr(torch.from_numpy(mean).expand_as(truth).contiguous(), truth).mean())


def final_val_pixcorr(run_dir) -> float:
    with (run_dir / "logs" / "metrics.csv").open() as f:
        values = [float(r["val/pixcorr"]) for r in csv.DictReader(f) if r.get("val/pixcorr")]
    return values[-1]


def test_three_pr_seeds_leave_the_plateau(sim_copy, tmp_path):
    from neuroclips.data.datamodule import validation_rows

    run_cli(["stage=standins", *COMMON, "scale.pr.standin.steps=300", "scale.standins.classifiers.enabled=false"],
            tmp_path, sim_copy)
    run_cli(["stage=targets", *COMMON, "~task.encoders.clip_tokens", "~task.encoders.caption_emb"], tmp_path, sim_copy)
    baseline = mean_frame_val_pixcorr(sim_copy, validation_rows(120, 0.1, 20, 0))
    finals = {}
    for seed in (0, 1, 2):
        run_cli(["stage=pr", *COMMON, f"seed={seed}", f"name=seed{seed}", "stage.max_epochs=4"], tmp_path, sim_copy)
        finals[seed] = final_val_pixcorr(tmp_path / "runs" / f"seed{seed}" / "subj1" / "pr")
    assert all(v > baseline for v in finals.values()), f"final val PixCorr {finals}, mean frame {baseline:.3f}"
