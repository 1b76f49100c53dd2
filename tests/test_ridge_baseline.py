"""The closed-form pixel ridge of the end-to-end table (experiments/simulated_benchmark/ridge_frames.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "simulated_benchmark"))

from ridge_frames import LAMBDAS, dual_ridge, frame_pixcorr, read_rows, ridge_blurry  # noqa: E402

from neuroclips.outputs import OutputStore  # noqa: E402

DATA = {"val_fraction": 0.1, "val_block": 10, "val_seed": 0}


def test_frame_pixcorr_is_pearson_per_frame():
    rng = np.random.default_rng(0)
    truth = rng.random((3, 6, 3, 8, 8)).astype(np.float32) * 0.4
    assert abs(frame_pixcorr(truth, truth) - 1.0) < 1e-6
    assert (
        abs(frame_pixcorr(2 * truth + 0.1, truth) - 1.0) < 1e-2
    )  # affine-invariant up to the uint8 rounding
    assert abs(frame_pixcorr(0.5 - truth, truth) + 1.0) < 1e-2
    other = rng.random(truth.shape).astype(np.float32)
    assert abs(frame_pixcorr(other, truth)) < 0.1


def test_ridge_writes_every_test_clip_and_beats_the_mean_frame(sim_file, tmp_path):
    fitted = ridge_blurry(read_rows(sim_file, 1, DATA), {"test": tmp_path / "outputs"})
    assert fitted["lambda"] in LAMBDAS
    store = OutputStore(tmp_path / "outputs")
    with h5py.File(sim_file, "r") as f:
        index = f["stimuli/test/clip_index"][:]
        truth = f["stimuli/test/frames"][:].astype(np.float32) / 255
        mean = f["stimuli/train/frames"][:].astype(np.float32).mean(0) / 255
    assert store.done("blurry") == sorted(int(i) for i in index)
    videos = np.stack([store.load("blurry", int(i)) for i in index])
    assert videos.dtype == np.uint8 and videos.shape == truth.shape
    ridge = frame_pixcorr(videos.astype(np.float32) / 255, truth)
    baseline = frame_pixcorr(np.broadcast_to(mean, truth.shape), truth)
    assert ridge > baseline + 0.1, (ridge, baseline)


def test_ridge_on_the_validation_split_keys_the_held_out_clips(sim_file, tmp_path):
    from neuroclips.data.sampler import validation_rows

    ridge_blurry(read_rows(sim_file, 1, DATA), {"val": tmp_path / "outputs"})
    with h5py.File(sim_file, "r") as f:
        n = len(f["stimuli/train/clip_index"])
        index = f["stimuli/train/clip_index"][:]
    held_out = validation_rows(n, DATA["val_fraction"], DATA["val_block"], DATA["val_seed"])
    assert OutputStore(tmp_path / "outputs").done("blurry") == sorted(int(i) for i in index[held_out])


def test_dual_ridge_keeps_the_lambda_that_scores_best_on_validation():
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(40, 300)), rng.normal(size=(300, 5))
    x_val = rng.normal(size=(10, 300))
    y, y_val = x @ w, x_val @ w

    def solve(lam: float) -> np.ndarray:
        return (x_val @ x.T) @ np.linalg.solve(x @ x.T + lam * np.eye(len(x)), y - y.mean(0)) + y.mean(0)

    errors = {lam: float(((solve(lam) - y_val) ** 2).mean()) for lam in LAMBDAS}
    lam, predict = dual_ridge(x, y, x_val, lambda predicted: -float(((predicted - y_val) ** 2).mean()))
    assert lam == min(errors, key=errors.get)
    assert np.allclose(predict(x_val), solve(lam))
