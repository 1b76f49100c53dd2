"""The targets cache: written once, resumable, refuses a changed encoder, read back per keyframe or per clip."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from neuroclips.data.datamodule import CC2017DataModule
from neuroclips.data.targets import ComputeTargets
from neuroclips.errors import ConfigError


class MeanColour(nn.Module):
    """Per-frame mean colour, repeated into 2 tokens (a stand-in for a frozen image encoder)."""

    source = "frames"

    def __init__(self, name: str, frame_indices, scale: float = 1.0):
        super().__init__()
        self.name, self.frame_indices, self.scale = name, frame_indices, scale
        self.calls = 0

    def output_shape(self):
        return (2, 3)

    def describe(self):
        return {"class": "MeanColour", "scale": self.scale}

    def encode(self, x):
        self.calls += x.shape[0]
        return (x.mean(dim=(2, 3)) * self.scale)[:, None].repeat(1, 2, 1)


class CaptionLength(nn.Module):
    name, source, frame_indices = "caption_emb", "captions", None

    def output_shape(self):
        return (1,)

    def encode(self, captions):
        return torch.tensor([[float(len(c))] for c in captions])


def test_cache_resume_and_read_back(sim_copy):
    task = ComputeTargets({}, batch_size=7)
    kf = MeanColour("clip_tokens", [2, 3])
    assert task._encode_split(str(sim_copy), kf, "clip_tokens", "train", torch.device("cpu")) == 120
    allf = MeanColour("frame_stats", None)
    task._encode_split(str(sim_copy), allf, "frame_stats", "train", torch.device("cpu"))
    task._encode_split(str(sim_copy), CaptionLength(), "caption_emb", "train", torch.device("cpu"))
    with h5py.File(sim_copy, "a") as f:
        assert f["targets/clip_tokens/train"].shape == (120, 2, 2, 3)
        assert list(f["targets/clip_tokens/train"].attrs["frame_indices"]) == [2, 3]
        assert f["targets/frame_stats/train"].shape == (120, 6, 2, 3)
        assert "frame_indices" not in f["targets/frame_stats/train"].attrs
        frames = f["stimuli/train/frames"][10].astype(np.float32) / 255
        f["targets/clip_tokens/train_done"][50:] = False  # as if the run had been killed half way
    expected = frames[3].mean(axis=(1, 2))
    kf2 = MeanColour("clip_tokens", [2, 3])
    assert task._encode_split(str(sim_copy), kf2, "clip_tokens", "train", torch.device("cpu")) == 70
    assert kf2.calls == 70 * 2, "only the unfinished rows are encoded again"
    dm = CC2017DataModule(
        file=str(sim_copy),
        subj=1,
        voxels=13447,
        targets=["clip_tokens", "frame_stats", "caption_emb"],
        val_fraction=0.0,
        keyframe_policy=3,
    )
    item = dm.dataset("train")[10]
    assert item["targets"]["clip_tokens"].shape == (2, 3)
    assert np.allclose(item["targets"]["clip_tokens"][0].numpy(), expected, atol=2e-3)
    assert item["targets"]["frame_stats"].shape == (6, 2, 3)
    assert item["targets"]["caption_emb"].shape == (1,)


def test_changed_encoder_is_refused_unless_overwrite(sim_copy):
    task = ComputeTargets({}, batch_size=32)
    task._encode_split(
        str(sim_copy), MeanColour("clip_tokens", [2]), "clip_tokens", "test", torch.device("cpu")
    )
    with pytest.raises(ConfigError, match="was cached with another encoder"):
        task._encode_split(
            str(sim_copy),
            MeanColour("clip_tokens", [2], scale=2.0),
            "clip_tokens",
            "test",
            torch.device("cpu"),
        )
    task.overwrite = True
    assert (
        task._encode_split(
            str(sim_copy),
            MeanColour("clip_tokens", [2], scale=2.0),
            "clip_tokens",
            "test",
            torch.device("cpu"),
        )
        == 20
    )


def _hold_open_for_reading(path) -> subprocess.Popen:
    """Another process with the data file open read-only (a training run), until its stdin closes."""
    code = "import h5py, sys; f = h5py.File(sys.argv[1], 'r'); print('open', flush=True); sys.stdin.read()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "open"
    return proc


def test_finished_cache_is_recognised_read_only_while_another_process_reads_the_file(sim_copy):
    task = ComputeTargets({}, batch_size=32)
    enc = MeanColour("clip_tokens", [2])
    task._encode_split(str(sim_copy), enc, "clip_tokens", "test", torch.device("cpu"))
    reader = _hold_open_for_reading(sim_copy)
    try:
        assert task._encode_split(str(sim_copy), enc, "clip_tokens", "test", torch.device("cpu")) == 0
        # work to do needs the file for writing: one sentence naming the file, not HDF5's traceback
        with pytest.raises(
            ConfigError, match=r"data\.h5: stage=targets must write .*another process holds it open"
        ):
            task._encode_split(
                str(sim_copy), MeanColour("frame_stats", None), "frame_stats", "test", torch.device("cpu")
            )
    finally:
        reader.communicate("")
    with h5py.File(sim_copy, "r") as f:
        assert "targets/frame_stats/test" not in f, "a refused run leaves nothing behind"


def test_same_encoder_with_another_fingerprint_is_refused_unless_overwrite(sim_copy):
    """Provenance: the same description under another fingerprint (the weights or the data changed) is neither
    taken as cached by the read-only check nor reused by the append path."""
    task = ComputeTargets({}, batch_size=32)
    enc = MeanColour("clip_tokens", [2])
    cpu = torch.device("cpu")
    assert task._encode_split(str(sim_copy), enc, "clip_tokens", "test", cpu, fingerprint="aaa") == 20
    assert task._encode_split(str(sim_copy), enc, "clip_tokens", "test", cpu, fingerprint="aaa") == 0
    with pytest.raises(ConfigError, match="cached under another configuration .*aaa, expected bbb"):
        task._encode_split(str(sim_copy), enc, "clip_tokens", "test", cpu, fingerprint="bbb")
    assert task._encode_split(str(sim_copy), enc, "clip_tokens", "test", cpu, "bbb", overwrite=True) == 20
    with h5py.File(sim_copy, "r") as f:
        assert f["targets/clip_tokens/test"].attrs["fingerprint"] == "bbb"
