"""Float images in [0, 1] to uint8: the one quantisation of frames, for what is written (outputs, GIFs) and what is
scored (validation PixCorr/SSIM, evaluation of float inputs), so a metric sees the bytes a file would hold."""

from __future__ import annotations

import numpy as np
import torch


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Float [0, 1] (any shape, any device) -> uint8 on the same device: round half up, clipped to 0..255.

    In float32: floor(clip(x * 255 + 0.5, 0, 255)); uint8 input passes through.
    """
    if images.dtype == torch.uint8:
        return images
    return (images.float() * 255.0 + 0.5).clamp_(0, 255).to(torch.uint8)


def to_uint8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """``quantize`` as a numpy array (for writing); uint8 input passes through."""
    if isinstance(x, torch.Tensor):
        return quantize(x.detach()).cpu().numpy()
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    return quantize(torch.from_numpy(np.asarray(x, np.float32))).numpy()
