"""Fixes of issue 14: PixCorr nanmean, presets (NEURONS all-pairs CLIP-pcc, Mind-Animator's ViFi gate, precision),
the N-way tie rule, Hugging Face int sizes, and the paired comparison end to end on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuroclips.evaluation.presets import PRESETS, preset_row, resolve_presets
from neuroclips.evaluation.suite import Bootstrap, EvalModels, NWaySettings, Scorer
from neuroclips.evaluation.vifi_clip import build_vifi_clip
from neuroclips.metrics.nway import nway_topk
from neuroclips.models.frozen_classifiers import (
    build_clip_embedder,
    build_frame_classifier,
    build_video_classifier,
)


def _clips(seed=0, n=6, f=6, size=32):
    g = torch.Generator().manual_seed(seed)
    gt = torch.randint(0, 256, (n, f, 3, size, size), generator=g, dtype=torch.uint8)
    noise = torch.randint(-40, 40, gt.shape, generator=g)
    return gt, (gt.int() + noise).clamp(0, 255).to(torch.uint8)


def _scorer(classifiers: bool = True, **kw):
    models = EvalModels(
        frame_classifier=build_frame_classifier("tiny") if classifiers else None,
        video_classifier=build_video_classifier("tiny") if classifiers else None,
        clip_embedders={
            "adjacent": build_clip_embedder("tiny", arch="tiny"),
            "all_pairs": build_clip_embedder("tiny", arch="tiny"),
        },
        vifi=build_vifi_clip("tiny"),
    )
    return Scorer(
        models,
        NWaySettings(num_trials=10),
        ["rgb255", "gray_gauss_columns"],
        ["skimage", "mind_animator"],
        ["adjacent", "all_pairs"],
        extra_metrics=["mse", "hue_pcc", "vifi"],
        bootstrap=Bootstrap(reps=50),
        **kw,
    )


def test_pixcorr_constant_frames_are_left_out_and_counted():
    gt, pred = _clips(n=4)
    gt[1, 2] = 90  # a constant ground-truth frame: Pearson's r is undefined
    scorer = _scorer(classifiers=False)
    metrics, per_clip = scorer.score(gt, pred)
    v = scorer.values["pixcorr"]
    assert np.isnan(v[1, 2]) and np.isfinite(metrics["pixcorr"]["value"])
    assert metrics["pixcorr"]["value"] == pytest.approx(np.nanmean(np.nanmean(v, 0)))  # NeuroClips' nanmean
    assert metrics["pixcorr"]["undefined"] == 1 and np.isfinite(per_clip["pixcorr"]).all()


def test_presets_pick_their_peers_variants_and_aggregation():
    gt, pred = _clips()
    scorer = _scorer()
    metrics, _ = scorer.score(gt, pred)
    neurons = preset_row(scorer, PRESETS["neurons"])
    assert "79f9346" in PRESETS["neurons"].upstream and neurons["aggregation"] == "all_pairs"
    clip = neurons["columns"]["clip_pcc"]
    assert "CLIP-pcc all_pairs" in clip["label"]  # NEURONS reports all-pairs CLIP-pcc since 79f9346
    pairs = scorer.values["clip_pcc_all_pairs"]
    assert clip["value"] == pytest.approx(pairs.mean()) and clip["std"] == pytest.approx(pairs.std())
    ma = preset_row(scorer, PRESETS["mind_animator"])
    assert ma["columns"]["ssim"]["std"] == pytest.approx(scorer.values["ssim_rgb255"].mean(1).std())
    mv = preset_row(scorer, PRESETS["mindvideo"])
    assert mv["columns"]["ssim"]["std"] == pytest.approx(metrics["ssim_rgb255"]["std"])  # per position
    assert (
        mv["columns"]["psnr"] is not None
        and mv["columns"]["mse"] is not None
        and mv["columns"]["epe"] is None
    )
    for row in (neurons, ma, mv):
        for e in filter(None, row["columns"].values()):
            assert e["ci_low"] <= e["value"] <= e["ci_high"]
    with pytest.raises(ValueError, match="task.presets"):
        resolve_presets(["mindvideo", "minddiffuser"])
    assert resolve_presets(["mindvideo"], softmax_dtype="float32")[0].softmax_dtype == "float32"


def test_mind_animator_gate_zeroes_clips_below_the_vifi_bar():
    gt, pred = _clips()
    scorer = _scorer(classifiers=False)
    scorer.score(gt, pred)
    scorer.values["vifi"] = np.array([[0.9], [0.6], [0.2], [0.7], [0.61], [0.0]])
    row = preset_row(scorer, PRESETS["mind_animator"])
    adj = scorer.values["clip_pcc_adjacent"]
    expected = [adj[i].mean() if v > 0.6 else 0.0 for i, v in enumerate([0.9, 0.6, 0.2, 0.7, 0.61, 0.0])]
    assert row["columns"]["clip_pcc"]["value"] == pytest.approx(np.mean(expected))
    assert "VIFI-score <= 0.6" in row["columns"]["clip_pcc"]["label"]
    # identical clips: VIFI-score 1 through the tiny ViFi-CLIP stand-in, so the gate passes them
    scorer.score(gt, gt)
    np.testing.assert_allclose(scorer.values["vifi"], 1.0, atol=1e-6)


def test_ties_rule_and_softmax_dtype():
    gt = torch.tensor([[5.0, 1.0, 0.0, 0.0]])
    pred = torch.tensor([[0.0, 0.0, 0.0, 0.0]])  # every candidate ties with the GT class
    kw = dict(n_way=2, num_trials=20, protocol="strict", rng=0)
    assert nway_topk(gt, pred, **kw).mean == 0.0  # ties count against the GT (default)
    assert nway_topk(gt, pred, ties="gt_wins", **kw).mean == 1.0
    with pytest.raises(ValueError, match="ties"):
        nway_topk(gt, pred, ties="coin", **kw)
    # fp16 softmax rounds small probabilities together: ties appear that fp32 does not have
    logits = torch.tensor([[9.0, -4.0, -4.001, -4.002, 0.0]])
    p16 = logits.half().softmax(-1)
    assert p16[0, 1] == p16[0, 2] and logits.softmax(-1)[0, 1] != logits.softmax(-1)[0, 2]


def test_int_size_is_the_shortest_edge_for_clip_and_a_square_for_vit(tmp_path):
    frames = torch.randint(0, 256, (2, 3, 40, 64), dtype=torch.uint8)
    clip = build_clip_embedder("tiny", arch="tiny")
    clip.model.save_pretrained(tmp_path / "clip")
    (tmp_path / "clip" / "preprocessor_config.json").write_text(json.dumps({"size": 32, "crop_size": 32}))
    local = build_clip_embedder("local", str(tmp_path / "clip"), arch="tiny")
    x = F.interpolate(
        frames.float() / 255, size=(32, 51), mode="bicubic", align_corners=False, antialias=True
    )
    x = x.clamp(0, 1)[..., :, 9:41]  # shortest edge 32, then the centre 32x32 crop
    torch.testing.assert_close(local.preprocess(frames), (x - local.preprocess.mean) / local.preprocess.std)
    vit = build_frame_classifier("tiny")
    vit.model.save_pretrained(tmp_path / "vit")
    (tmp_path / "vit" / "preprocessor_config.json").write_text(json.dumps({"size": 32}))
    assert build_frame_classifier("local", str(tmp_path / "vit")).preprocess(frames).shape[-2:] == (32, 32)


def test_compare_two_systems_on_the_same_clips(tmp_path):
    from types import SimpleNamespace

    from neuroclips.data.simulate import config_for, simulate
    from neuroclips.evaluate import translate
    from neuroclips.tasks.eval import EvalTask

    sim = tmp_path / "sim.h5"
    simulate(
        sim,
        config_for("tiny", n_train=4, n_test=10, image_size=32, subjects=(1,), segment_len=4),
        progress=False,
    )
    import h5py

    with h5py.File(sim, "r") as f:
        gt = f["stimuli/test/frames"][:]
    rng = np.random.default_rng(0)
    for name, noise in (("a", 60), ("b", 5)):  # b is clearly closer to the ground truth
        (tmp_path / name / "blurry").mkdir(parents=True)
        for c, clip in enumerate(gt):
            noisy = np.clip(clip.astype(int) + rng.integers(-noise, noise + 1, clip.shape), 0, 255).astype(
                np.uint8
            )
            np.save(tmp_path / name / "blurry" / f"{c:05d}.npy", noisy)
    task = EvalTask(
        source=str(tmp_path / "a"),
        compare_with=str(tmp_path / "b"),
        kinds=["blurry"],
        models={},
        ssim=["rgb255"],
        psnr=["skimage"],
        clip_pcc=[],
        extra_metrics=["mse"],
        presets=["mindvideo"],
        bootstrap={"reps": 200},
        comparison={"permutations": 500},
        report={"clips": 2, "combine_subjects": False},
    )
    ctx = SimpleNamespace(
        run_dir=tmp_path / "eval",
        data_file=str(sim),
        subj=1,
        scale="tiny",
        device=torch.device("cpu"),
        is_global_zero=True,
    )
    task.run(ctx)
    comp = json.loads((tmp_path / "eval" / "comparison.json").read_text())
    ssim_r = comp["kinds"]["blurry"]["metrics"]["ssim_rgb255"]
    assert ssim_r["n"] == len(gt) and ssim_r["diff"] > 0 and ssim_r["ci_low"] > 0 and ssim_r["p_value"] < 0.01
    assert (
        comp["kinds"]["blurry"]["metrics"]["mse"]["diff"] < 0
        and not comp["kinds"]["blurry"]["metrics"]["mse"]["higher_is_better"]
    )
    md = (tmp_path / "eval" / "comparison.md").read_text()
    assert "| ssim_rgb255 |" in md and "p (sign-flip)" in md
    report = (tmp_path / "eval" / "metrics.md").read_text()
    assert "Paired comparison: blurry" in report and "95% CI (clips)" in report
    # the CLI form maps onto the same task keys
    args = translate(["compare", f"a={tmp_path / 'a'}", f"b={tmp_path / 'b'}", f"gt={sim}"])
    assert f"task.source={tmp_path / 'a'}" in args and f"task.compare_with={tmp_path / 'b'}" in args
    with pytest.raises(SystemExit, match="a=DIR b=DIR"):
        translate(["compare", f"a={tmp_path / 'a'}"])
