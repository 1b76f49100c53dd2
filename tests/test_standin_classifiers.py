"""Fitted tiny N-way classifiers (stage=standins): training clips only, original layout, strict load, cached."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.standin_checks import assert_reused_only_for_same_data_and_settings


@pytest.fixture(scope="module")
def fitted(sim_file, tmp_path_factory):
    from neuroclips.data.sampler import validation_rows
    from neuroclips.tasks.standin_classifiers import TinyClassifierStandins

    root = tmp_path_factory.mktemp("classifiers")
    held_out = validation_rows(120, 0.1, 20, 0)
    task = TinyClassifierStandins(
        frame_dir=str(root / "frame"), video_dir=str(root / "video"), steps=3, batch_size=4, lr=1e-3, seed=0
    )
    stats = task.fit_and_save(str(sim_file), held_out, {"frames_sha1": "x"})
    return task, stats


def test_scene_classes_are_shape_times_colour():
    from neuroclips.tasks.standin_classifiers import scene_classes

    assert scene_classes(np.array([0, 1, 7]), np.array([3, 0, 7]), 8).tolist() == [3, 8, 63]


def test_read_labelled_clips_reads_only_the_rows_given(sim_file):
    import h5py

    from neuroclips.tasks.standin_classifiers import read_labelled_clips

    rows = np.arange(0, 40)
    frames, classes, n_classes = read_labelled_clips(sim_file, rows)
    with h5py.File(sim_file) as f:
        cut = f["stimuli/train/scene_cut"][:40]
        expected = f["stimuli/train/frames"][:40][~cut]
    assert n_classes == 64 and frames.shape[0] == classes.shape[0] == (~cut).sum()
    np.testing.assert_array_equal(frames, expected)


@pytest.mark.parametrize("kind", ["frame", "video"])
def test_fitted_classifier_loads_strictly_through_the_paper_scale_loader(fitted, kind):
    import transformers

    from neuroclips.models.frozen_classifiers import build_frame_classifier, build_video_classifier

    task, stats = fitted
    folder = task.frame_dir if kind == "frame" else task.video_dir
    cls = (
        transformers.ViTForImageClassification
        if kind == "frame"
        else transformers.VideoMAEForVideoClassification
    )
    _, info = cls.from_pretrained(str(folder), local_files_only=True, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    wrapper = (build_frame_classifier if kind == "frame" else build_video_classifier)(
        source="local", path=str(folder)
    )
    frames = torch.randint(0, 255, (2, 6, 3, 64, 64), dtype=torch.uint8)
    logits = wrapper(frames[:, 0]) if kind == "frame" else wrapper(frames)
    assert logits.shape == (2, 64)
    assert (
        stats[f"{kind}_classifier"]["steps"] == 3
        and 0.0 <= stats[f"{kind}_classifier"]["val_accuracy"] <= 1.0
    )


def test_fitted_classifiers_are_reused_only_for_the_same_data_and_settings(fitted):
    task, _ = fitted
    assert_reused_only_for_same_data_and_settings(task, {"frames_sha1": "x"})


def test_fit_is_deterministic_for_a_seed(sim_file, fitted, tmp_path):
    from neuroclips.data.sampler import validation_rows
    from neuroclips.tasks.standin_classifiers import TinyClassifierStandins

    task, _ = fitted
    again = TinyClassifierStandins(
        frame_dir=str(tmp_path / "f"), video_dir=str(tmp_path / "v"), steps=3, batch_size=4, lr=1e-3, seed=0
    )
    again.fit_and_save(str(sim_file), validation_rows(120, 0.1, 20, 0), {"frames_sha1": "x"})
    from safetensors.torch import load_file

    a, b = load_file(task.frame_dir / "model.safetensors"), load_file(again.frame_dir / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
