"""The DataModule: shapes, dtypes, disjoint splits, repetition/keyframe policies, workers, cached targets."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from neuroclips.data.datamodule import CC2017DataModule
from neuroclips.data.sampler import validation_rows


def make_dm(path, **kw):
    base = dict(file=str(path), subj=1, voxels=13447, batch_size=8, val_fraction=0.2, val_block=10, seed=0)
    base.update(kw)
    dm = CC2017DataModule(**base)
    dm.setup()
    return dm


def test_shapes_and_dtypes(sim_file):
    dm = make_dm(sim_file, load_frames=True, load_captions=True)
    b = next(iter(dm.train_dataloader()))
    assert b["fmri"].shape == (8, 13447) and b["fmri"].dtype == torch.float32
    assert b["frames"].shape == (8, 6, 3, 64, 64) and b["frames"].dtype == torch.float32
    assert 0 <= float(b["frames"].min()) and float(b["frames"].max()) <= 1
    assert b["keyframe"].shape == (8, 3, 64, 64)
    assert b["clip_index"].dtype == torch.int64 and len(b["caption"]) == 8
    t = next(iter(dm.test_dataloader()))
    with h5py.File(sim_file) as f:
        expected = f["fmri/subj01/test"][int(t["split_index"][0])].astype(np.float32).mean(0)
    assert torch.allclose(t["fmri"][0], torch.from_numpy(expected)), (
        "test fMRI is the mean over the 10 repetitions"
    )
    assert (t["keyframe_index"] == 2).all()


def test_validation_is_contiguous_blocks_disjoint_from_train(sim_file):
    dm = make_dm(sim_file)
    rows = dm.split_rows()
    train, val = set(rows["train"].tolist()), set(rows["val"].tolist())
    assert not train & val and len(train) + len(val) == 120
    v = np.sort(rows["val"])
    assert len(v) == 20 and all(len(blk) == 10 for blk in np.split(v, np.nonzero(np.diff(v) != 1)[0] + 1))
    assert np.array_equal(validation_rows(120, 0.2, 10, 0), validation_rows(120, 0.2, 10, 0))
    assert not np.array_equal(validation_rows(1200, 0.2, 10, 0), validation_rows(1200, 0.2, 10, 1))


def test_epoch_parity_policies(sim_file):
    dm = make_dm(sim_file, rep_policy="epoch_parity", keyframe_policy="parity_2_3")
    ds = dm.dataset("train")
    row = int(ds.rows[0])
    with h5py.File(sim_file) as f:
        reps = f["fmri/subj01/train"][row].astype(np.float32)
    for epoch in (0, 1, 2):
        dm.set_epoch(epoch)
        item = ds[0]
        assert item["rep"] == epoch % 2 and item["keyframe_index"] == 2 + epoch % 2
        assert torch.allclose(item["fmri"], torch.from_numpy(reps[epoch % 2]))
    val_item = dm.dataset("val")[0]
    assert val_item["rep"] == -1 and val_item["keyframe_index"] == 2


def test_random_and_mean_policies(sim_file):
    dm = make_dm(sim_file, rep_policy="random", keyframe_policy="random")
    ds = dm.dataset("train")
    seen_reps = {ds[i]["rep"] for i in range(30)}
    seen_kf = {ds[i]["keyframe_index"] for i in range(30)}
    assert seen_reps == {0, 1} and len(seen_kf) > 2

    # seeded per (seed, epoch, row): a fresh DataModule replays the draws; another epoch or seed draws anew
    def draws(dm, epoch):
        dm.set_epoch(epoch)
        return [(d["rep"], d["keyframe_index"]) for d in (dm.dataset("train")[i] for i in range(30))]

    first = draws(dm, 0)
    assert draws(make_dm(sim_file, rep_policy="random", keyframe_policy="random"), 0) == first
    assert draws(dm, 1) != first
    assert draws(make_dm(sim_file, rep_policy="random", keyframe_policy="random", seed=1), 0) != first
    dm = make_dm(sim_file, rep_policy="mean", keyframe_policy=4)
    item = dm.dataset("train")[0]
    assert item["rep"] == -1 and item["keyframe_index"] == 4
    with pytest.raises(ValueError, match="rep_policy"):
        CC2017DataModule(file=str(sim_file), subj=1, voxels=13447, rep_policy="odd")


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_workers_open_hdf5_lazily(sim_file, context):
    dm = make_dm(sim_file, num_workers=2, load_frames=True)
    ds = dm.dataset("train")
    assert ds._h5 is None, "no h5py handle may exist before the workers start"
    workers = 2 if context == "fork" else 1  # spawn re-imports torch per worker: keep it to one
    loader = torch.utils.data.DataLoader(
        ds, batch_size=16, num_workers=workers, multiprocessing_context=context
    )
    dm.set_epoch(1)
    batches = list(loader)
    got = torch.cat([b["fmri"] for b in batches])
    ref = torch.stack([ds[i]["fmri"] for i in range(len(ds))])
    assert torch.equal(got, ref)
    assert {int(r) for b in batches for r in b["rep"]} == {1}, "the epoch reaches the workers"


def test_in_memory_equals_lazy(sim_file):
    a = make_dm(sim_file, load_frames=True).dataset("val")[3]
    b = make_dm(sim_file, load_frames=True, in_memory=True).dataset("val")[3]
    assert torch.equal(a["fmri"], b["fmri"]) and torch.equal(a["frames"], b["frames"])


def test_cached_targets_follow_the_keyframe(sim_copy):
    with h5py.File(sim_copy, "a") as f:
        d = f.create_dataset(
            "targets/clip_tokens/train", data=np.arange(120 * 2 * 3, dtype=np.float16).reshape(120, 2, 3)
        )
        d.attrs["frame_indices"] = np.array([2, 3])
    dm = make_dm(sim_copy, targets=["clip_tokens"])
    ds = dm.dataset("train")
    row = int(ds.rows[0])
    dm.set_epoch(1)
    assert ds[0]["targets"]["clip_tokens"].tolist() == [
        float(row * 6 + 3),
        float(row * 6 + 4),
        float(row * 6 + 5),
    ]
    dm2 = make_dm(sim_copy, targets=["clip_tokens"], keyframe_policy=5)
    with pytest.raises(ValueError, match=r"caches frames \[2, 3\], but the keyframe policy asks for frame 5"):
        dm2.dataset("train")[0]


def test_predict_split_and_clip_subset(sim_file):
    dm = make_dm(sim_file, predict_clips=[3, 7, 11])
    assert [dm.dataset("predict")[i]["clip_index"] for i in range(3)] == [3, 7, 11]


def test_sampler_shards_strided_or_contiguous(sim_file, monkeypatch):
    from neuroclips.data.sampler import EpochSampler

    ds = make_dm(sim_file).dataset("predict")  # 20 test clips
    got = {}
    for shard in ("strided", "contiguous"):
        for rank in (0, 1, 2):
            monkeypatch.setattr(EpochSampler, "_dist", staticmethod(lambda r=rank: (r, 3)))
            s = EpochSampler(ds, shuffle=False, seed=0, pad=False, shard=shard)
            got[shard, rank] = list(s)
            assert len(s) == len(got[shard, rank])
    assert got["strided", 1] == list(range(1, 20, 3))
    assert got["contiguous", 0] == list(range(0, 6)) and got["contiguous", 2] == list(range(13, 20))
    assert sorted(sum((got["contiguous", r] for r in range(3)), [])) == list(range(20))
    monkeypatch.setattr(EpochSampler, "_dist", staticmethod(lambda: (1, 3)))
    padded = EpochSampler(ds, shuffle=True, seed=0, pad=True, shard="contiguous")
    assert len(list(padded)) == len(padded) == 7
