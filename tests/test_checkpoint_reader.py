"""One reader of Lightning checkpoints (checkpoints.load_lightning_checkpoint): the init loader, the resume check and
the fingerprint all read through it, and each keeps its own answer to a file that cannot be read."""

from __future__ import annotations

import sys

import pytest
import torch

from neuroclips.checkpoints import CheckpointMismatchError, load_lightning_checkpoint, read_checkpoint
from neuroclips.errors import StageError
from neuroclips.provenance import checkpoint_fingerprint
from neuroclips.resume import read_last


@pytest.fixture
def ckpt_file(tmp_path):
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"net.w": torch.arange(6.0)}, "neuroclips": {"fingerprint": "abc123"}}, path)
    return path


def test_every_reader_goes_through_the_shared_load(ckpt_file, monkeypatch):
    callers = []
    real_load = torch.load

    def spy(*args, **kwargs):
        callers.append((sys._getframe(1).f_globals["__name__"], kwargs.get("mmap")))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    assert torch.equal(read_checkpoint(ckpt_file)["state_dict"]["net.w"], torch.arange(6.0))
    assert torch.equal(read_last(ckpt_file)["state_dict"]["net.w"], torch.arange(6.0))
    assert checkpoint_fingerprint(ckpt_file) == "abc123"
    # read_checkpoint reads the weights; the resume check and the fingerprint memory-map them
    assert callers == [("neuroclips.checkpoints", mmap) for mmap in (False, True, True)]


def test_a_truncated_file_gets_each_callers_sentence(ckpt_file):
    ckpt_file.write_bytes(ckpt_file.read_bytes()[:200])
    with pytest.raises(Exception) as raw:
        load_lightning_checkpoint(ckpt_file, mmap=True)
    name = type(raw.value).__name__
    with pytest.raises(CheckpointMismatchError) as init:
        read_checkpoint(ckpt_file)
    assert str(init.value).startswith(f"{ckpt_file}: cannot be read as a neuroclips checkpoint ({name}: ")
    with pytest.raises(StageError) as resume:
        read_last(ckpt_file)
    assert str(resume.value) == (
        f"{ckpt_file}: cannot be read as a neuroclips checkpoint ({name}); move it away, or pass "
        "resume=never to start this run over."
    )
    assert checkpoint_fingerprint(ckpt_file) is None  # identified by size and mtime instead


def test_a_readable_file_without_state_dict_is_not_a_resume_checkpoint(tmp_path):
    path = tmp_path / "other.ckpt"
    torch.save({"weights": torch.zeros(2)}, path)
    assert checkpoint_fingerprint(path) is None
    with pytest.raises(StageError, match="not a Lightning checkpoint"):
        read_last(path)
