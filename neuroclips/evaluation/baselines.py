"""Baselines measured in the same evaluation run, scored by the same Scorer on the same clips as ours.

* ``mean_frame``: every clip predicted as the mean training frame (the pixel mean over every frame of every clip of
  the data file's training split, never the test clips), repeated over the clip's frames: what a model that ignores
  the fMRI can reach on pixel metrics.
* ``shuffled``: our own reconstructions with the clips permuted (a derangement: no clip keeps its own), i.e. each
  ground-truth clip scored against the reconstruction made from another clip's fMRI. Generation is seeded per clip,
  so this equals regenerating from shuffled fMRI up to each clip's sampling noise. Anything ours scores that this
  row also scores is not decoded from the brain (the shared look of the movie, the metric's floor).

evaluation.md: a reconstruction is only meaningful next to what no brain data gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch

from neuroclips.data import schema
from neuroclips.evaluation.readers import resize_frames
from neuroclips.metrics.mean_frame import mean_training_frame

BASELINE_LABELS = {
    "mean_frame": "mean training frame (every clip predicted as the pixel mean of the training clips)",
    "shuffled": "ours with the clips permuted (each clip scored against another clip's reconstruction: shuffled fMRI)",
}


@dataclass
class BaselineSettings:
    """``task.baselines``: which baselines, for which kinds of reconstruction, and the permutation's seed."""

    names: list[str] = field(default_factory=list)  # conf/stage/eval.yaml lists both
    kinds: list[str] = field(default_factory=lambda: ["video", "blurry"])
    seed: int = 0

    def __post_init__(self) -> None:
        self.names, self.kinds = list(self.names), list(self.kinds)
        unknown = [n for n in self.names if n not in BASELINE_LABELS]
        if unknown:
            raise ValueError(
                f"task.baselines.names: expected names from {sorted(BASELINE_LABELS)}, found {unknown}."
            )


def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of range(n) with no fixed point (one random cycle through every index), n >= 2."""
    if n < 2:
        raise ValueError(f"a shuffled-clips baseline needs at least 2 clips, found {n}.")
    order = np.random.default_rng(seed).permutation(n)
    out = np.empty(n, np.int64)
    out[order] = np.roll(order, -1)
    return out


def mean_frame_clips(data_file: str, like: torch.Tensor) -> torch.Tensor:
    """The mean training frame, resized to ``like``'s frame size and repeated to its shape (N, F, 3, H, W) uint8."""
    with h5py.File(data_file, "r") as f:
        frames = f[schema.stimulus_path("train", "frames")]
        mean = mean_training_frame(frames, np.arange(frames.shape[0]))
    mean = resize_frames(mean.unsqueeze(0), tuple(like.shape[-2:]))[0]
    return mean.expand_as(like).contiguous()


def baseline_predictions(
    settings: BaselineSettings, data_file: str | None, recon: torch.Tensor
) -> dict[str, torch.Tensor | str]:
    """name -> predictions of the same shape as ``recon``, clip-aligned with its ground truth, or the sentence
    saying why that baseline cannot be made here."""
    out: dict[str, torch.Tensor | str] = {}
    for name in settings.names:
        if name == "mean_frame":
            if not data_file or not Path(data_file).is_file():
                out[name] = "no data file with training frames (the ground truth came from elsewhere)"
            else:
                out[name] = mean_frame_clips(data_file, recon)
        elif len(recon) < 2:
            out[name] = f"{len(recon)} clip scored: nothing to permute"
        else:
            out[name] = recon[torch.from_numpy(derangement(len(recon), settings.seed))]
    return out
