"""The simulated cc2017: deterministic, schema-valid, and learnable (a closed-form ridge decoder beats chance)."""

from __future__ import annotations

import h5py
import numpy as np

from neuroclips.data import schema
from neuroclips.data.simulate import config_for, simulate

TINY = dict(n_train=40, n_test=10, segment_len=20, subjects="3")


def test_same_seed_gives_identical_arrays(tmp_path):
    a = simulate(tmp_path / "a.h5", config_for("tiny", **TINY), progress=False)
    b = simulate(tmp_path / "b.h5", config_for("tiny", **TINY), progress=False)
    c = simulate(tmp_path / "c.h5", config_for("tiny", seed=1, **TINY), progress=False)
    with h5py.File(a) as fa, h5py.File(b) as fb, h5py.File(c) as fc:
        for key in (
            "stimuli/train/frames",
            "stimuli/test/frames",
            "fmri/subj03/train",
            "fmri/subj03/test",
            "stimuli/train/captions",
        ):
            assert np.array_equal(fa[key][:], fb[key][:]), key
        assert not np.array_equal(fa["fmri/subj03/train"][:], fc["fmri/subj03/train"][:])
    assert schema.validate(a) == []


def test_movie_has_scene_cuts_captions_and_segments(sim_file):
    with h5py.File(sim_file) as f:
        cuts = f["stimuli/train/scene_cut"][:]
        caps = [c.decode() for c in f["stimuli/train/captions"][:]]
        seg = f["stimuli/train/segment"][:]
        labels = f["stimuli/train/labels"][:]
    assert 0 < cuts.mean() < 0.9
    assert all(c.startswith(("a ", "an ")) and " over " in c for c in caps)
    assert len(set(seg.tolist())) == 3 and len(set(labels.tolist())) > 3


def _mean_pixels(frames: np.ndarray) -> np.ndarray:
    x = frames.astype(np.float32).mean(1) / 255.0  # (N, 3, H, W)
    n, _, h, w = x.shape
    return x.reshape(n, 3, 8, h // 8, 8, w // 8).mean((3, 5)).reshape(n, -1)


def test_ridge_decoder_recovers_held_out_clips(sim_file):
    """Closed-form (dual) ridge from voxels to mean clip pixels: 2-way identification on test clips beats chance."""
    with h5py.File(sim_file) as f:
        y_tr, y_te = _mean_pixels(f["stimuli/train/frames"][:]), _mean_pixels(f["stimuli/test/frames"][:])
        x_tr = f["fmri/subj01/train"][:].astype(np.float32).mean(1)
        x_te = f["fmri/subj01/test"][:].astype(np.float32).mean(1)
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
    x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
    ym = y_tr.mean(0)
    alpha = np.linalg.solve(x_tr @ x_tr.T + 1e3 * np.eye(len(x_tr)), y_tr - ym)
    pred = x_te @ x_tr.T @ alpha + ym
    c = np.corrcoef(pred, y_te)[: len(pred), len(pred) :]
    n = len(pred)
    two_way = np.mean([c[i, i] > c[i, j] for i in range(n) for j in range(n) if i != j])
    assert two_way > 0.75, two_way  # chance is 0.5

    # and the voxels carry no information once the stimulus is shuffled away (the test can fail)
    rng = np.random.default_rng(0)
    alpha_shuf = np.linalg.solve(
        x_tr @ x_tr.T + 1e3 * np.eye(len(x_tr)), y_tr[rng.permutation(len(y_tr))] - ym
    )
    c2 = np.corrcoef(x_te @ x_tr.T @ alpha_shuf + ym, y_te)[:n, n:]
    two_way_shuf = np.mean([c2[i, i] > c2[i, j] for i in range(n) for j in range(n) if i != j])
    assert two_way_shuf < two_way - 0.15
