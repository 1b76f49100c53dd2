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


def _additive_residual(head: torch.Tensor, n_colours: int = 8) -> torch.Tensor:
    """What of a (shapes * colours, ...) head is not shape part + colour part (double-centred)."""
    grid = head.reshape(-1, n_colours, *head.shape[1:])
    return grid - grid.mean(1, keepdim=True) - grid.mean(0, keepdim=True) + grid.mean((0, 1), keepdim=True)


def test_additive_scene_logits_project_onto_shape_plus_colour():
    from neuroclips.tasks.standin_classifier_fit import AdditiveSceneLogits

    project = AdditiveSceneLogits(8)
    head = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
    projected = project(head)
    assert _additive_residual(head).abs().max() > 0.1  # a random head is not additive
    assert _additive_residual(projected).abs().max() < 1e-5
    torch.testing.assert_close(project(projected), projected)  # a projection
    shape_part, colour_part = torch.randn(8, 1, 5), torch.randn(1, 8, 5)
    additive = (shape_part + colour_part).reshape(64, 5)
    torch.testing.assert_close(project(additive), additive)  # keeps what is already additive
    torch.testing.assert_close(project(torch.arange(64.0)), torch.arange(64.0))  # biases: one entry a class


@pytest.mark.parametrize("kind", ["frame", "video"])
def test_fitted_classifier_head_is_saved_additive(fitted, kind):
    from safetensors.torch import load_file

    task, _ = fitted
    weights = load_file((task.frame_dir if kind == "frame" else task.video_dir) / "model.safetensors")
    assert _additive_residual(weights["classifier.weight"]).abs().max() < 1e-5
    assert _additive_residual(weights["classifier.bias"]).abs().max() < 1e-5


def test_blurred_keeps_flat_frames_and_smooths_edges():
    from neuroclips.tasks.standin_classifier_fit import blurred

    flat = torch.full((2, 6, 3, 16, 16), 77, dtype=torch.uint8)
    assert torch.equal(blurred(flat, 4), flat)
    edge = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    edge[..., 8:] = 255
    out = blurred(edge, 4)
    assert out.shape == edge.shape and out.dtype == torch.uint8
    assert 0 < int(out[0, 0, 0, 7]) < 255  # the edge is spread over its neighbours


def test_unknown_head_is_refused_naming_the_key(tmp_path):
    from neuroclips.tasks.standin_classifiers import TinyClassifierStandins

    with pytest.raises(ValueError, match="train.standins.classifiers.head"):
        TinyClassifierStandins(frame_dir=str(tmp_path / "f"), video_dir=str(tmp_path / "v"), head="product")
