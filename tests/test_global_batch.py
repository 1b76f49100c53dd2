"""A configured batch size is the global batch of one optimizer step: the DataModule divides it over the DDP
processes, refuses a remainder, and its sampler makes the ranks' batches of step k together the one-process
batch k (strided and contiguous sharding). The memory plan uses the same meaning."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from neuroclips.data.datamodule import CC2017DataModule
from neuroclips.data.sampler import EpochSampler, process_batch_size
from neuroclips.errors import ConfigError


def test_process_batch_size_divides_the_global_batch():
    assert process_batch_size(24, 1) == 24
    assert process_batch_size(24, 2) == 12
    assert process_batch_size(720, 8) == 90


def test_a_batch_that_does_not_divide_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as e:
        process_batch_size(25, 2, "train.sr.batch_size")
    msg = str(e.value)
    assert msg.startswith("train.sr.batch_size: expected a multiple of the 2 processes, found 25")
    assert msg.count(". ") == 0 and msg.endswith(").")  # one sentence


def _dm(sim_file, **kw):
    return CC2017DataModule(file=str(sim_file), subj=1, voxels=13447, **kw)


def test_datamodule_divides_over_the_trainer_world(sim_file):
    dm = _dm(sim_file, batch_size=24, eval_batch_size=10)
    assert dm.world_size() == 1 and dm.train_batch_size() == 24
    assert dm.train_dataloader().batch_size == 24
    dm.trainer = SimpleNamespace(
        world_size=2
    )  # what Lightning attaches; torch.distributed is not initialised here
    assert dm.world_size() == 2 and dm.train_batch_size() == 12
    assert dm.train_dataloader().batch_size == 12
    assert dm.val_dataloader().batch_size == 10  # evaluation batches are per process


def test_datamodule_refuses_an_uneven_global_batch(sim_file):
    dm = _dm(sim_file, batch_size=25, batch_size_field="train.sr.batch_size")
    dm.trainer = SimpleNamespace(world_size=2)
    with pytest.raises(
        ConfigError, match=r"^train\.sr\.batch_size: expected a multiple of the 2 processes, found 25"
    ):
        dm.train_dataloader()


def _batches(sampler_per_rank, batch):
    """Per rank, its list of batches (lists of dataset positions) as a DataLoader without drop_last cuts them."""
    out = []
    for idx in sampler_per_rank:
        idx = list(idx)
        out.append([idx[s : s + batch] for s in range(0, len(idx), batch)])
    return out


@pytest.mark.parametrize("shard", ["strided", "contiguous"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_rank_batches_of_a_step_are_the_one_process_batch(sim_file, monkeypatch, shard, shuffle):
    dm = _dm(sim_file, batch_size=12, limit_clips=96)
    ds = dm.dataset("train")  # 96 clips: 8 global batches of 12
    one = EpochSampler(ds, shuffle=shuffle, seed=3, pad=True, shard=shard, block=12)
    monkeypatch.setattr(EpochSampler, "_dist", staticmethod(lambda: (0, 1)))
    (ref,) = _batches([iter(one)], 12)
    world, per = 3, 4
    ranks = []
    for rank in range(world):
        monkeypatch.setattr(EpochSampler, "_dist", staticmethod(lambda r=rank: (r, world)))
        s = EpochSampler(ds, shuffle=shuffle, seed=3, pad=True, shard=shard, block=per)
        assert len(s) == len(list(iter(s))) == 96 // world
        ranks.append(iter(s))
    per_rank = _batches(ranks, per)
    assert all(len(b) == len(ref) for b in per_rank)
    for k, batch in enumerate(ref):
        assert sorted(sum((per_rank[r][k] for r in range(world)), [])) == sorted(batch), k
        if (
            shard == "contiguous" and not shuffle
        ):  # each rank's piece is consecutive clips (the PR's batch window)
            for r in range(world):
                piece = per_rank[r][k]
                assert piece == list(range(piece[0], piece[0] + len(piece)))


def test_contiguous_training_blocks_with_padding_stay_even(sim_file, monkeypatch):
    dm = _dm(sim_file, batch_size=10, limit_clips=25)
    ds = dm.dataset("train")  # 25 clips over 2 ranks: padded to 26
    lens = []
    for rank in range(2):
        monkeypatch.setattr(EpochSampler, "_dist", staticmethod(lambda r=rank: (r, 2)))
        s = EpochSampler(ds, shuffle=False, seed=0, pad=True, shard="contiguous", block=5)
        idx = list(iter(s))
        lens.append(len(idx))
        assert len(s) == len(idx)
        # the last global batch (items 20..25, padded with item 0) splits 3 + 3
        assert idx[:5] == list(range(rank * 5, rank * 5 + 5))
    assert lens == [13, 13]


def test_memory_plan_per_gpu_batch_is_global_over_gpus():
    import torch
    from omegaconf import OmegaConf

    from neuroclips.memory_plan import memory_plan

    cfg = OmegaConf.create({"datamodule": {"batch_size": 40}, "trainer": {"precision": "32-true"}})
    module = torch.nn.Linear(4, 4)
    plan = memory_plan(cfg, {"trainable": 20, "frozen": 0}, {"system": module})
    assert plan["batch_size"] == 40 and "global" in plan["batch_size_meaning"]
    assert plan["plans"]["ddp_x4"]["per_gpu_batch"] == 10
    assert plan["plans"]["ddp_x8"]["per_gpu_batch"] == 5
    bad = memory_plan(
        OmegaConf.create({"datamodule": {"batch_size": 90}}),
        {"trainable": 20, "frozen": 0},
        {"system": module},
    )["plans"]["ddp_x4"]
    assert (
        bad["per_gpu_batch"] is None and "expected a multiple of the 4 processes, found 90" in bad["refused"]
    )


@pytest.mark.slow
def test_ddp_run_refuses_an_uneven_global_batch(sim_file, tmp_path):
    from tests.conftest import run_cli

    proc = run_cli(
        ["stage=toy_fit", "logger=none", "trainer=ddp_cpu", "datamodule.batch_size=15"],
        tmp_path,
        sim_file,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "datamodule.batch_size: expected a multiple of the 2 processes, found 15" in proc.stderr
    assert not (tmp_path / "runs/default/subj1/toy_fit/checkpoints/last.ckpt").exists()
