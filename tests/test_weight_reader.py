"""The one reader of local weight files (utils.weights.read_weight_file): safetensors, torch files of tensors,
untrusted pickles refused in one sentence that names the config key, missing files named by their field."""

from __future__ import annotations

import types

import pytest
import torch

from neuroclips.errors import UserError
from neuroclips.utils.weights import MissingWeightsError, UnreadableWeightsError, read_weight_file


def test_reads_safetensors_and_torch_files(tmp_path):
    from safetensors.torch import save_file

    w = {"a": torch.arange(4.0)}
    save_file(w, tmp_path / "w.safetensors")
    torch.save({"state_dict": w}, tmp_path / "w.pth")
    assert torch.equal(read_weight_file(tmp_path / "w.safetensors", "k", "weights")["a"], w["a"])
    assert torch.equal(read_weight_file(tmp_path / "w.pth", "k", "weights")["state_dict"]["a"], w["a"])


def test_a_pickle_is_read_only_when_trusted(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"model": {"a": torch.ones(1)}, "config": types.SimpleNamespace(arch="x")}, path)
    with pytest.raises(UnreadableWeightsError) as e:
        read_weight_file(
            path, "scale.pr.teacher.weights", "teacher weights", False, "scale.pr.teacher.allow_pickle"
        )
    assert str(e.value) == (
        f"{path}: expected teacher weights (config field 'scale.pr.teacher.weights'), found pickled Python objects "
        "other than tensors (refused: unpickling can run code; set scale.pr.teacher.allow_pickle=true if you "
        "trust the file)."
    )
    assert isinstance(e.value, UserError)
    trusted = read_weight_file(path, "scale.pr.teacher.weights", "teacher weights", True)
    assert trusted["config"].arch == "x"


def test_garbage_and_missing_files_are_one_sentence(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(UnreadableWeightsError, match=r"found a file torch cannot read\.$"):
        read_weight_file(path, "scale.gen.keyframe.unclip_file", "an unCLIP checkpoint", True)
    with pytest.raises(MissingWeightsError, match="scale.gen.keyframe.unclip_file"):
        read_weight_file(tmp_path / "none.ckpt", "scale.gen.keyframe.unclip_file", "an unCLIP checkpoint")
