"""PR stages through the real CLI on the small simulated file: standins -> targets -> pr -> blurry (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import read_summary, run_inprocess

FAST_STANDIN = ["train.standins.vae.steps=20"]


@pytest.mark.slow
def test_standins_targets_pr_blurry_chain(sim_copy, tmp_path):
    common = ["scale=tiny", "trainer.enable_progress_bar=false"]
    run_inprocess(["stage=standins", *common, *FAST_STANDIN], tmp_path, sim_copy)
    assert read_summary(tmp_path, "standins")["metrics"]["steps"] >= 1
    again = run_inprocess(["stage=standins", *common, *FAST_STANDIN], tmp_path, sim_copy)
    assert read_summary(tmp_path, "standins")["metrics"].get("reused") is True, again.stderr[-2000:]
    run_inprocess(
        ["stage=targets", *common, "~task.encoders.clip_tokens", "~task.encoders.caption_emb"],
        tmp_path,
        sim_copy,
    )
    run_inprocess(
        ["stage=pr", *common, "stage.max_epochs=1", "+datamodule.limit_clips=16"], tmp_path, sim_copy
    )  # cached
    summary = read_summary(tmp_path, "pr")
    assert np.isfinite(summary["metrics"]["val/pixcorr"]) and summary["checkpoint"].endswith("best.ckpt")
    run_inprocess(["stage=blurry", *common, "+datamodule.limit_clips=6"], tmp_path, sim_copy)
    blurry = sorted((tmp_path / "runs" / "default" / "subj1" / "outputs" / "blurry").glob("*.npy"))
    assert len(blurry) == 6
    frames = np.load(blurry[0])
    assert frames.shape == (6, 3, 64, 64) and frames.dtype == np.uint8
    run_inprocess(
        ["stage=blurry", *common, "+datamodule.limit_clips=6"], tmp_path, sim_copy
    )  # resumes: nothing to do
    assert read_summary(tmp_path, "blurry")["metrics"]["clips_written"] == 0
