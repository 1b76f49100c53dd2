"""The whole pipeline at its smallest size through `python -m neuroclips.pipeline` (what `make demo` runs)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow

SMALLEST = [
    "experiment=demo",
    "train.sr.epochs=1",
    "train.sr_prior.epochs=1",
    "train.sr_prior.sample_every=1",
    "train.pr.max_epochs=1",
    "train.standins.vae.steps=20",
    "train.standins.classifiers.steps=5",
    "train.standins.generator_vae.steps=4",
    "train.standins.unclip.unet.steps=4",
    "train.standins.video.unet.steps=4",
    "data.predict_clips=[0,1,2,3]",
    "trainer.enable_progress_bar=false",
]


def test_every_stage_chains_and_a_rerun_skips_finished_ones(sim_copy, tmp_path):
    proc = run_cli(SMALLEST, tmp_path, sim_copy, module="neuroclips.pipeline", timeout=1500)
    root = tmp_path / "runs/demo/subj1"
    for stage in (
        "standins",
        "generators",
        "targets",
        "sr",
        "sr_prior",
        "pr",
        "blurry",
        "keyframe",
        "video",
        "eval",
    ):
        s = json.loads((root / stage / "summary.json").read_text())
        assert s["status"] == "finished" and s["stage"] == stage, stage
    for kind, n_files in (("blurry", 4), ("keyframe", 4), ("video", 4)):
        assert len(list((root / "outputs" / kind).glob("*.npy"))) == n_files, kind
    assert "generators: runs (not finished) in the background beside sr, sr_prior, pr, blurry" in proc.stdout
    report = root / "eval" / "report.html"
    assert report.exists() and f"report: {report}" in proc.stdout
    metrics = json.loads((root / "eval" / "metrics.json").read_text())
    assert metrics["kinds"]["video"]["n_clips"] == 4
    again = run_cli(SMALLEST, tmp_path, sim_copy, module="neuroclips.pipeline", timeout=600)
    assert again.stdout.count("finished with the same fingerprint, skipped") == 10, again.stdout

    # a PR setting changes: exactly pr and what reads it rerun (blurry, video, eval), each saying why
    changed = run_cli(
        [*SMALLEST, "train.pr.max_lr=0.002"], tmp_path, sim_copy, module="neuroclips.pipeline", timeout=900
    )
    ran = {line.split()[2].rstrip(":") for line in changed.stdout.splitlines() if ": runs (" in line}
    assert ran == {"pr", "blurry", "video", "eval"}, changed.stdout
    assert "system.optimizer.lr: 0.001 -> 0.002" in changed.stdout, changed.stdout
    assert "input stage blurry changed" in changed.stdout  # video reran because its input did
    pr = json.loads((root / "pr" / "summary.json").read_text())
    video_clip = json.loads((root / "outputs" / "video" / "00000.json").read_text())
    assert (
        video_clip["fingerprint"] == json.loads((root / "video" / "summary.json").read_text())["fingerprint"]
    )
    assert pr["provenance"]["config"]["system"]["optimizer"]["lr"] == 0.002
