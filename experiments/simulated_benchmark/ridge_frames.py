"""The closed-form ridge baseline of the end-to-end table: fMRI -> the clip's 6 frames, one linear map in pixels.

What a linear decoder makes of the same brain data without any part of the method (no VAE, no network, no
generator): the guide's third same-run baseline beside the mean training frame and the shuffled fMRI. Fitted in
dual form (voxels >> clips) on the training clips without the validation blocks, each clip's repetitions averaged;
λ is chosen by PixCorr on the validation blocks; the frames of ``split`` are predicted with it and written as the
``blurry`` kind of an outputs store (uint8, like the PR's blurry videos), so the eval stage scores them as it
scores those.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from neuroclips.data.sampler import validation_rows
from neuroclips.outputs import OutputStore

LAMBDAS = (1e2, 1e3, 1e4, 1e5)


def frame_pixcorr(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean Pearson correlation over frames (clips × 6), pixels of all three channels together."""
    p = predicted.reshape(-1, int(np.prod(predicted.shape[2:])))
    t = truth.reshape(-1, int(np.prod(truth.shape[2:])))
    p, t = p - p.mean(1, keepdims=True), t - t.mean(1, keepdims=True)
    return float(np.mean((p * t).sum(1) / np.sqrt((p * p).sum(1) * (t * t).sum(1) + 1e-12)))


def ridge_blurry(data_file: Path, target: Path, split: str, subject: int, data_cfg: dict) -> dict:
    """Fit, choose λ, predict ``split`` ("test" or "val") into ``target``; returns λ and the validation PixCorr."""
    with h5py.File(data_file, "r") as f:
        fmri = f[f"fmri/subj{subject:02d}/train"][:].astype(np.float64).mean(1)
        frames = f["stimuli/train/frames"][:].astype(np.float32) / 255.0
        test_fmri = f[f"fmri/subj{subject:02d}/test"][:].astype(np.float64).mean(1)
        test_index = f["stimuli/test/clip_index"][:]
        train_index = f["stimuli/train/clip_index"][:]
    val = validation_rows(len(fmri), data_cfg["val_fraction"], data_cfg["val_block"], data_cfg["val_seed"])
    train = np.setdiff1d(np.arange(len(fmri)), val)
    x, y = fmri[train], frames[train].reshape(len(train), -1).astype(np.float64)
    mean = y.mean(0)
    gram, cross_val = x @ x.T, fmri[val] @ x.T
    scores, duals = {}, {}
    for lam in LAMBDAS:
        duals[lam] = np.linalg.solve(gram + lam * np.eye(len(x)), y - mean)
        scores[lam] = frame_pixcorr((cross_val @ duals[lam] + mean).reshape(frames[val].shape), frames[val])
    best = max(scores, key=scores.get)
    rows, index = (test_fmri, test_index) if split == "test" else (fmri[val], train_index[val])
    predicted = ((rows @ x.T) @ duals[best] + mean).reshape((len(rows),) + frames.shape[1:])
    store = OutputStore(target)
    for clip, video in zip(index, predicted):
        uint8 = (np.clip(video, 0, 1) * 255).round().astype(np.uint8)
        store.save("blurry", int(clip), uint8, {"source": f"closed-form pixel ridge, lambda {best:g}"})
    return {"lambda": best, "val_pixcorr": scores[best]}
