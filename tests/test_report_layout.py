"""Report layout: column titles with scores, captions under keyframes and ground truth, the stand-in line, and no
paper rows beside ours on simulated data."""

from __future__ import annotations

import json

import h5py
import numpy as np


def _doc(data_file, source, models=None) -> dict:
    metric = {"value": 0.612, "std": 0.1, "n": 2, "label": "SSIM rgb255"}
    return {
        "subject": 1,
        "scale": "tiny",
        "split": "test",
        "source": str(source),
        "layout": "store",
        "data_file": str(data_file),
        "frame_indices": [0],
        "keyframe_gt_index": 2,
        "drop_scene_cuts": False,
        "nway": {
            "protocols": ["mindvideo"],
            "n_ways": [2],
            "top_k": 1,
            "num_trials": 5,
            "seed": 0,
            "sampler": "reference",
        },
        "models": models
        or {
            "frame_classifier": "tiny ViT fitted to the simulated scene classes (stand-in)",
            "clip_adjacent": "CLIP tiny (tiny)",
        },
        "kinds": {
            "keyframe": {"n_clips": 2, "frame_selection": "frame 2", "metrics": {"ssim_rgb255": metric}}
        },
    }


def test_simulated_report_has_captions_titled_columns_and_no_paper_rows(sim_file, tmp_path):
    from neuroclips.report import render_html, render_markdown

    store = tmp_path / "outputs"
    (store / "caption").mkdir(parents=True)
    (store / "caption" / "00001.json").write_text(
        json.dumps({"text": "a red star moving left", "caption_source": "nearest_train"})
    )
    with h5py.File(sim_file) as f:
        gt_caption = f["stimuli/test/captions"][1]
        gt_caption = gt_caption.decode() if isinstance(gt_caption, bytes) else str(gt_caption)
        clip = int(f["stimuli/test/clip_index"][1])
    frames = np.zeros((6, 3, 8, 8), np.uint8)
    doc = _doc(sim_file, store)
    if clip != 1:  # the caption sidecar is keyed by clip index
        (store / "caption" / "00001.json").rename(store / "caption" / f"{clip:05d}.json")
    page = render_html(doc, [], {clip: frames}, {"keyframe": {clip: frames[0]}})
    assert "a red star moving left" in page and gt_caption in page
    assert "keyframe: unCLIP image from the SR" in page and "all clips: SSIM 0.612" in page
    md = render_markdown(doc)
    assert "(paper)" not in md and "not comparable" in md
    assert "Fitted stand-ins" in md and "frame_classifier: tiny ViT fitted" in md
    assert (
        "Random (untrained) stand-ins: the unCLIP keyframe generator, the AnimateDiff + SparseCtrl video "
        "generator, clip_adjacent" in md
    )
    assert "nearest training clip" in md


def test_report_names_a_fitted_unclip_as_fitted(sim_file, tmp_path):
    from neuroclips.report import render_markdown

    store = tmp_path / "outputs"
    (store / "caption").mkdir(parents=True)
    weights = "data/standins/unclip/unclip6_tiny.safetensors"
    sidecar = {"text": "a red star", "caption_source": "nearest_train", "unclip_weights": weights}
    (store / "caption" / "00001.json").write_text(json.dumps(sidecar))
    md = render_markdown(_doc(sim_file, store))
    assert f"the VAE; the unCLIP keyframe generator ({weights})" in md
    assert "Random (untrained) stand-ins: the AnimateDiff + SparseCtrl video generator, clip_adjacent" in md
    assert "keyframe column is drawn by its fitted generator; the video column comes from a random one" in md


def test_report_names_both_fitted_generators_and_no_random_one(sim_file, tmp_path):
    from neuroclips.report import render_markdown

    store = tmp_path / "outputs"
    for kind, sidecar in {
        "caption": {
            "text": "a red star",
            "caption_source": "nearest_train",
            "unclip_weights": "u.safetensors",
        },
        "video": {"clip_index": 1, "video_weights": "data/standins/video"},
    }.items():
        (store / kind).mkdir(parents=True)
        (store / kind / "00001.json").write_text(json.dumps(sidecar))
    md = render_markdown(_doc(sim_file, store))
    assert "the AnimateDiff + SparseCtrl video generator (data/standins/video)" in md
    assert "Random (untrained) stand-ins: clip_adjacent" in md  # only the random eval model is left
    assert "video generator, clip" not in md and "keyframe and video columns are drawn by the fitted" in md


def test_paper_rows_stay_for_data_that_is_not_simulated(tmp_path):
    from neuroclips.report import render_markdown

    other = tmp_path / "cc2017.h5"
    with h5py.File(other, "w") as f:
        f.attrs["source"] = "cc2017"
    md = render_markdown(_doc(other, tmp_path / "none"))
    assert "| NeuroClips avg (paper) | 0.834 ± 0.030 |" in md and "Table 1 comparison" in md


def test_python_m_report_rerenders_a_finished_eval_run(tmp_path):
    from neuroclips.report import render_markdown
    from neuroclips.report.__main__ import main

    run = tmp_path / "eval"
    run.mkdir()
    doc = _doc(tmp_path / "none.h5", tmp_path / "none")
    (run / "metrics.json").write_text(json.dumps(doc))
    assert main([str(run)]) == 0
    assert (run / "metrics.md").read_text() == render_markdown(doc)
