"""Readers for reconstructions in foreign formats, frame selection, resizing, and the frozen evaluation models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from neuroclips.evaluation.readers import (
    ReconstructionError,
    ReconstructionFolder,
    clip_number,
    read_entry,
    resize_frames,
    select_frames,
)
from neuroclips.models.frozen_classifiers import (
    build_clip_embedder,
    build_frame_classifier,
    build_video_classifier,
)
from neuroclips.utils.weights import MissingWeightsError

PALETTE = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]], np.uint8)


def _clip(seed: int, t: int = 6, size: int = 16) -> np.ndarray:
    """(T, H, W, 3) uint8 using 5 colours only, so GIF palettes store it losslessly."""
    rng = np.random.default_rng(seed)
    return PALETTE[rng.integers(0, len(PALETTE), (t, size, size))]


def _save_gif(path, frames_hwc: np.ndarray) -> None:
    ims = [Image.fromarray(f) for f in frames_hwc]
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=100, loop=0)


def test_every_documented_format_reads_back(tmp_path):
    clips = {i: _clip(i) for i in range(5)}
    np.save(tmp_path / "00000.npy", clips[0])  # (T, H, W, 3) uint8
    torch.save(
        torch.from_numpy(clips[1]).permute(0, 3, 1, 2).float() / 255.0, tmp_path / "clip_1.pt"
    )  # float CHW
    _save_gif(tmp_path / "recon-2.gif", clips[2])
    (tmp_path / "00003").mkdir()
    for i, f in enumerate(clips[3]):
        Image.fromarray(f).save(tmp_path / "00003" / f"frame_{i:02d}.png")
    Image.fromarray(clips[4][0]).save(tmp_path / "00004.png")  # a single image (keyframe)
    (tmp_path / "notes.txt").write_text("ignored")
    folder = ReconstructionFolder(tmp_path, layout="auto")
    entries = folder.entries("video")
    assert sorted(entries) == [0, 1, 2, 3, 4]
    for i in range(4):
        np.testing.assert_array_equal(folder.load(entries[i]), clips[i].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(folder.load(entries[4]), clips[4][0].transpose(2, 0, 1))


def test_side_by_side_gifs_with_one_based_names(tmp_path):
    gt, pred = _clip(1), _clip(2)
    _save_gif(tmp_path / "test1.gif", np.concatenate([gt, pred], axis=2))
    folder = ReconstructionFolder(tmp_path, layout="side_by_side", index_base=1)
    entries = folder.entries("video")
    assert list(entries) == [0]
    g, p = folder.load_side_by_side(entries[0])
    np.testing.assert_array_equal(g, gt.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(p, pred.transpose(0, 3, 1, 2))


def test_store_layout_is_detected(tmp_path):
    (tmp_path / "video").mkdir()
    np.save(tmp_path / "video" / "00007.npy", _clip(0, t=16).transpose(0, 3, 1, 2))
    (tmp_path / "video" / "00007.json").write_text(json.dumps({"seed": 1}))
    folder = ReconstructionFolder(tmp_path)
    assert folder.resolved_layout("video") == "store" and list(folder.entries("video")) == [7]
    assert folder.entries("blurry") == {}


def test_errors_name_the_file_and_what_was_expected(tmp_path):
    bad = tmp_path / "00001.npy"
    np.save(bad, np.zeros((4, 5), np.float32))
    with pytest.raises(ReconstructionError, match="00001.npy: expected"):
        read_entry(bad)
    np.save(bad, np.full((2, 3, 4, 4), 2.0, np.float32))
    with pytest.raises(ReconstructionError, match=r"in \[0, 1\]"):
        read_entry(bad)
    with pytest.raises(ReconstructionError, match="does not exist"):
        ReconstructionFolder(tmp_path / "missing")
    with pytest.raises(ReconstructionError, match="asks for frame 14"):
        select_frames(np.zeros((10, 3, 4, 4), np.uint8), [4, 6, 8, 10, 12, 14], 6, "video clip 3")


def test_frame_selection_and_resize():
    video = np.arange(16)[:, None, None, None] * np.ones((16, 3, 2, 2), np.uint8)
    picked = select_frames(video, [4, 6, 8, 10, 12, 14], 6, "clip")
    assert picked[:, 0, 0, 0].tolist() == [4, 6, 8, 10, 12, 14]
    assert select_frames(video[:6], [4, 6, 8, 10, 12, 14], 6, "clip") is not None
    frames = torch.full((2, 6, 3, 8, 8), 77, dtype=torch.uint8)
    assert resize_frames(frames, (4, 4)).shape == (2, 6, 3, 4, 4)
    assert (resize_frames(frames, (4, 4)) == 77).all()
    assert (
        clip_number("test12.gif", 1) == 11 and clip_number("00005") == 5 and clip_number("clip.gif") is None
    )


def test_tiny_models_and_local_round_trip(tmp_path):
    frames = torch.randint(0, 256, (2, 6, 3, 40, 48), dtype=torch.uint8)
    vit = build_frame_classifier("tiny")
    assert vit(frames[:, 0]).shape == (2, 1000)
    assert build_video_classifier("tiny")(frames).shape == (2, 400)
    assert build_clip_embedder("tiny")(frames[:, 0]).shape[0] == 2
    vit.model.save_pretrained(tmp_path / "vit")
    (tmp_path / "vit" / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "size": {"height": 32, "width": 32},
                "image_mean": [0.5] * 3,
                "image_std": [0.5] * 3,
                "resample": 2,
            }
        )
    )
    local = build_frame_classifier("local", str(tmp_path / "vit"))
    torch.testing.assert_close(local(frames[:, 0]), vit(frames[:, 0]))
    with pytest.raises(MissingWeightsError, match="config field 'scale.eval.models.frame_classifier.path'"):
        build_frame_classifier("local", str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(MissingWeightsError, match="model.safetensors"):
        build_video_classifier("local", str(tmp_path / "empty"))


def test_paper_architectures_on_meta():
    with torch.device("meta"):
        vit = build_frame_classifier("random")
        mae = build_video_classifier("random")
        clip = build_clip_embedder("random", arch="vit-b-32")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert 86_000_000 < count(vit) < 87_000_000  # ViT-B/16 + 1000-class head
    assert 86_000_000 < count(mae) < 87_000_000  # VideoMAE-base + 400-class head
    assert 87_000_000 < count(clip) < 89_000_000  # CLIP ViT-B/32 vision + projection
    assert mae.model.config.num_frames == 6
