"""The runtime through the real CLI: fit, predict (resumable), dry_run, resume, summary.json."""

from __future__ import annotations

import json

import numpy as np
import torch

from tests.conftest import read_summary, run_cli, run_inprocess


def test_fit_writes_summary_checkpoints_and_config(sim_file, tmp_path):
    run_cli(["stage=toy_fit", "logger=csv"], tmp_path, sim_file)
    s = read_summary(tmp_path, "toy_fit")
    assert set(s) >= {"stage", "subj", "scale", "metrics", "checkpoint", "outputs", "config", "wall_s"}
    assert s["stage"] == "toy_fit" and s["subj"] == 1 and s["scale"] == "tiny"
    assert s["checkpoint"].endswith("best.ckpt")
    assert "best/val/loss" in s["metrics"] and np.isfinite(s["metrics"]["best/val/loss"])
    run_dir = tmp_path / "runs/default/subj1/toy_fit"
    assert (run_dir / "config.yaml").exists() and (run_dir / "checkpoints/last.ckpt").exists()
    ckpt = torch.load(s["checkpoint"], map_location="cpu", weights_only=True)
    assert ckpt["neuroclips"]["stage"] == "toy_fit" and ckpt["neuroclips"]["subj"] == 1
    assert not any(k.startswith("frozen.") for k in ckpt["state_dict"]), (
        "frozen weights must stay out of checkpoints"
    )
    assert any(k.startswith("net.") for k in ckpt["state_dict"])


def test_predict_writes_each_clip_once_and_resumes(sim_file, tmp_path):
    run_inprocess(["stage=toy_predict", "logger=none", "data.predict_clips=[0,1,2,3,4]"], tmp_path, sim_file)
    out = tmp_path / "runs/default/subj1/outputs"
    assert sorted(p.name for p in (out / "keyframe").glob("*.npy")) == [f"{i:05d}.npy" for i in range(5)]
    kf = np.load(out / "keyframe/00003.npy")
    assert kf.dtype == np.uint8 and kf.shape == (3, 8, 8)
    assert json.loads((out / "caption/00003.json").read_text())["text"] == "clip 3"
    before = (out / "keyframe/00000.npy").stat().st_mtime_ns
    run_inprocess(["stage=toy_predict", "logger=none"], tmp_path, sim_file)  # all 20 test clips: 15 new
    s = read_summary(tmp_path, "toy_predict")
    assert s["metrics"]["clips_done_before"] == 5 and s["metrics"]["clips_written"] == 15
    assert (out / "keyframe/00000.npy").stat().st_mtime_ns == before, "finished clips must not be recomputed"


def test_dry_run_counts_parameters_on_meta(sim_file, tmp_path):
    run_inprocess(["stage=toy_fit", "dry_run=true"], tmp_path, sim_file)
    s = read_summary(tmp_path, "toy_fit")
    p = s["metrics"]["parameters"]
    assert p["trainable"] == 13447 * 3 + 3 and p["frozen"] == 12
    plan = s["metrics"]["memory_plan"]
    assert plan["plans"]["ddp_x1"]["total_gib"] > 0
    assert not (tmp_path / "runs/default/subj1/toy_fit/checkpoints").exists()


def test_unknown_config_key_fails_clearly(sim_file, tmp_path):
    proc = run_cli(["stage=toy_fit", "no_such_key=3"], tmp_path, sim_file, check=False)
    assert proc.returncode != 0
    assert "no_such_key" in proc.stderr
