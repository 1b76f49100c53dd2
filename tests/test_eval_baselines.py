"""Same-run baselines of the eval stage (neuroclips/evaluation/baselines.py): the mean training frame and our own
reconstructions with the clips permuted, scored like ours and shown beside ours in the report."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from neuroclips.evaluation.baselines import BaselineSettings, derangement, mean_frame_clips
from neuroclips.evaluation.models import build_eval_models
from neuroclips.evaluation.suite import Bootstrap, NWaySettings, Scorer
from neuroclips.outputs import OutputStore
from neuroclips.tasks.eval import EvalTask
from tests import test_eval_task
from tests.test_eval_task import TINY_MODELS, _ctx, _gt

sim_file = test_eval_task.sim_file  # the same small simulated file (a module-scoped fixture)


@pytest.mark.parametrize("n", [2, 3, 10, 61])
def test_derangement_moves_every_clip_and_is_seeded(n):
    d = derangement(n, seed=4)
    assert sorted(d.tolist()) == list(range(n)) and (d != np.arange(n)).all()
    assert np.array_equal(d, derangement(n, seed=4))
    if n > 3:
        assert not np.array_equal(d, derangement(n, seed=5))


def test_derangement_refuses_a_single_clip():
    with pytest.raises(ValueError, match="at least 2 clips"):
        derangement(1, 0)


def test_mean_frame_is_the_mean_of_every_training_frame(sim_file):
    with h5py.File(sim_file, "r") as f:
        train = f["stimuli/train/frames"][:]
    want = np.rint(train.astype(np.float64).mean(axis=(0, 1))).astype(np.uint8)
    like = torch.zeros(5, 6, *want.shape, dtype=torch.uint8)
    got = mean_frame_clips(str(sim_file), like)
    assert got.shape == like.shape and got.dtype == torch.uint8
    assert all(np.array_equal(got[i, j].numpy(), want) for i in range(5) for j in range(6))


def test_unknown_baseline_is_refused():
    with pytest.raises(ValueError, match="task.baselines.names"):
        BaselineSettings(names=["mean_frame", "oracle"])


def _perfect_store(sim_file: Path, root: Path) -> np.ndarray:
    gt = _gt(sim_file)
    store = OutputStore(root)
    for c, clip in enumerate(gt):
        video = np.zeros((16, *clip.shape[1:]), np.uint8)
        video[[4, 6, 8, 10, 12, 14]] = clip
        store.save("video", c, video, {"seed": c})
        store.save("blurry", c, clip, {"seed": c})
    return gt


def test_baselines_are_scored_like_ours_and_reported_beside_ours(sim_file, tmp_path):
    gt = _perfect_store(sim_file, tmp_path / "outputs")
    task = EvalTask(
        source=str(tmp_path / "outputs"),
        kinds=["video", "blurry"],
        models=TINY_MODELS,
        nway={"num_trials": 10, "seed": 0},
        report={"clips": 2, "combine_subjects": False},
        baselines={"names": ["mean_frame", "shuffled"], "kinds": ["video"], "seed": 3},
        extra_metrics=[],
    )
    task.run(_ctx(sim_file, tmp_path / "eval"))
    doc = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    video = doc["kinds"]["video"]
    assert "baselines" not in doc["kinds"]["blurry"]  # only the kinds listed
    ours, shuffled = video["metrics"], video["baselines"]["shuffled"]["metrics"]
    mean = video["baselines"]["mean_frame"]["metrics"]
    assert ours["ssim_rgb255"]["value"] == pytest.approx(1.0)
    assert shuffled["ssim_rgb255"]["value"] < 0.99 and mean["ssim_rgb255"]["value"] < 0.99
    assert mean.keys() == ours.keys() == shuffled.keys()

    # the shuffled row is exactly our frames scored against a derangement of the clips, by the same scorer
    scorer = Scorer(
        build_eval_models(TINY_MODELS, ["adjacent", "all_pairs"], [], torch.device("cpu"), True, False),
        NWaySettings(num_trials=10, seed=0),
        ["rgb255", "gray_gauss", "gray_gauss_columns"],
        ["skimage", "mind_animator"],
        ["adjacent", "all_pairs"],
        True,
        32,
        "cpu",
        extra_metrics=[],
        bootstrap=Bootstrap(),
    )
    truth = torch.from_numpy(gt)
    want, _ = scorer.score(truth, truth[torch.from_numpy(derangement(len(gt), 3))])
    for name in ("ssim_rgb255", "psnr_skimage", "pixcorr", "clip_pcc_all_pairs", "video_2way_strict"):
        assert shuffled[name]["value"] == pytest.approx(want[name]["value"]), name

    md = (tmp_path / "eval" / "metrics.md").read_text()
    assert "Same-run baselines: video" in md
    assert "mean training frame" in md and "ours, clips permuted (shuffled fMRI)" in md
    assert "Same-run baselines: blurry" not in md
    assert "Same-run baselines: video" in (tmp_path / "eval" / "report.html").read_text()


def test_mean_frame_baseline_without_a_data_file_says_why(sim_file, tmp_path):
    from neuroclips.evaluation.baselines import baseline_predictions

    out = baseline_predictions(
        BaselineSettings(names=["mean_frame", "shuffled"]),
        None,
        torch.zeros(1, 6, 3, 8, 8, dtype=torch.uint8),
    )
    assert "no data file" in out["mean_frame"] and "nothing to permute" in out["shuffled"]
