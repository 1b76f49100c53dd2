"""The closed-form ridge baseline of the end-to-end table: fMRI -> the clip's 6 frames, one linear map in pixels.

What a linear decoder makes of the same brain data without any part of the method (no VAE, no network, no
generator): the guide's third same-run baseline beside the mean training frame and the shuffled fMRI. Fitted in
dual form (voxels >> clips) on the training clips without the validation blocks, each clip's repetitions averaged;
λ is chosen by PixCorr on the validation blocks; the frames of ``split`` are predicted with it and written as the
``blurry`` kind of an outputs store (uint8, like the PR's blurry videos), so the eval stage scores them as it
scores those.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from neuroclips.data.sampler import validation_rows
from neuroclips.metrics.pixcorr import pixcorr
from neuroclips.outputs import OutputStore

LAMBDAS = (1e2, 1e3, 1e4, 1e5)


def frame_pixcorr(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean PixCorr over the frames of videos (..., 3, H, W) in [0, 1]: the eval's metric (neuroclips.metrics.pixcorr,
    on the frames rounded to uint8 as the outputs store keeps them), without its resize."""

    def frames_u8(videos: np.ndarray) -> np.ndarray:
        return (np.clip(videos, 0, 1) * 255).round().astype(np.uint8).reshape((-1,) + videos.shape[-3:])

    return float(np.nanmean(pixcorr(frames_u8(predicted), frames_u8(truth), size=None).numpy()))


def dual_ridge(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, score) -> tuple[float, Callable]:
    """Closed-form ridge in dual form (voxels >> clips) from ``x`` to ``y`` for each λ of LAMBDAS; the λ whose
    prediction for ``x_val`` scores best (``score(prediction)``, higher is better). Returns (λ, predict), ``predict(z)``
    being that ridge's prediction ``(z @ x.T) @ dual + mean of y`` for rows ``z``."""
    mean, gram, cross = y.mean(0), x @ x.T, x_val @ x.T
    best = (-np.inf, None, None)
    for lam in LAMBDAS:
        dual = np.linalg.solve(gram + lam * np.eye(len(x)), y - mean)
        value = score(cross @ dual + mean)
        if value > best[0]:
            best = (value, lam, dual)
    _, lam, dual = best
    return lam, lambda z: (z @ x.T) @ dual + mean


def read_rows(data_file: Path, subject: int, data_cfg) -> dict:
    """The subject's training and test fMRI (as stored, repetitions kept), the training frames (uint8), the clip
    indices of both splits, and the validation / training rows of the training split."""
    with h5py.File(data_file, "r") as f:
        rows = {
            "fmri": f[f"fmri/subj{subject:02d}/train"][:],
            "frames": f["stimuli/train/frames"][:],
            "index": f["stimuli/train/clip_index"][:],
            "test_fmri": f[f"fmri/subj{subject:02d}/test"][:],
            "test_index": f["stimuli/test/clip_index"][:],
        }
    n = len(rows["fmri"])
    val = validation_rows(n, data_cfg["val_fraction"], data_cfg["val_block"], data_cfg["val_seed"])
    return {**rows, "val": val, "train": np.setdiff1d(np.arange(n), val)}


def ridge_blurry(rows: dict, targets: dict[str, Path]) -> dict:
    """Fit on ``read_rows``'s rows, choose λ, predict each split of ``targets`` ("test", "val") into its store;
    returns the λ chosen."""
    fmri = rows["fmri"].astype(np.float64).mean(1)
    frames = rows["frames"].astype(np.float32) / 255.0
    val, train = rows["val"], rows["train"]
    shape = frames[val].shape
    lam, predict = dual_ridge(
        fmri[train],
        frames[train].reshape(len(train), -1).astype(np.float64),
        fmri[val],
        lambda predicted: frame_pixcorr(predicted.reshape(shape), frames[val]),
    )
    test_fmri = rows["test_fmri"].astype(np.float64).mean(1)
    inputs = {"test": (test_fmri, rows["test_index"]), "val": (fmri[val], rows["index"][val])}
    for split, target in targets.items():
        x, index = inputs[split]
        predicted = predict(x).reshape((len(x),) + frames.shape[1:])
        store = OutputStore(target)
        for clip, video in zip(index, predicted):
            uint8 = (np.clip(video, 0, 1) * 255).round().astype(np.uint8)
            store.save("blurry", int(clip), uint8, {"source": f"closed-form pixel ridge, lambda {lam:g}"})
    return {"lambda": lam}
