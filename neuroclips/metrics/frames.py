"""Shape and dtype checks shared by the pixel metrics: everything is scored on RGB uint8 frames, channel-first."""

from __future__ import annotations

import numpy as np
import torch


def as_frames_nchw(frames, name: str = "frames") -> torch.Tensor:
    """Return a uint8 tensor (N, 3, H, W) from uint8 (N, 3, H, W) or (N, H, W, 3), numpy or torch.

    Channel-last input is recognised by a last dimension of 3 and a second dimension that is not 3.
    """
    t = torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a numpy array or torch tensor, found {type(frames).__name__}.")
    if t.dtype != torch.uint8:
        raise TypeError(f"{name}: expected uint8 RGB frames (0..255), found dtype {t.dtype}.")
    if t.ndim != 4:
        raise ValueError(
            f"{name}: expected 4 dims (N, 3, H, W) or (N, H, W, 3), found shape {tuple(t.shape)}."
        )
    if t.shape[1] != 3 and t.shape[-1] == 3:
        t = t.permute(0, 3, 1, 2)
    if t.shape[1] != 3:
        raise ValueError(f"{name}: expected 3 colour channels, found shape {tuple(t.shape)}.")
    return t.contiguous()
