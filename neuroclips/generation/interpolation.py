"""6 blurry frames (3 fps) -> 16 frames (8 fps) by the reference's linear interpolation (method.md §7.2 step 2).

The reference keeps the first frame, then appends for every consecutive pair (A_i, A_i+1) the frames
0.67·A_i + 0.33·A_i+1, 0.33·A_i + 0.67·A_i+1 and A_i+1: 1 + 5·3 = 16 frames. The literals 0.67/0.33 (not 2/3, 1/3)
are the reference's; ``weights="exact"`` uses thirds instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

REFERENCE_BETWEEN = (0.33, 0.67)  # weight of A_{i+1} in the two inserted frames, as the reference writes them
EXACT_BETWEEN = (1.0 / 3.0, 2.0 / 3.0)


def interpolation_matrix(num_in: int = 6, weights: str = "reference") -> torch.Tensor:
    """W with out = W @ in over the frame axis: shape (1 + 3·(num_in − 1), num_in); rows sum to 1."""
    if weights not in ("reference", "exact"):
        raise ValueError(f"interpolation weights: expected 'reference' or 'exact', found {weights!r}.")
    between = REFERENCE_BETWEEN if weights == "reference" else EXACT_BETWEEN
    first = torch.zeros(num_in, dtype=torch.float64)
    first[0] = 1.0
    rows = [first]
    for i in range(num_in - 1):
        for w_next in (*between, 1.0):
            row = torch.zeros(num_in, dtype=torch.float64)
            row[i] = 1.0 - w_next
            row[i + 1] = w_next
            rows.append(row)
    return torch.stack(rows).float()


def interpolate_frames(frames: torch.Tensor, weights: str = "reference") -> torch.Tensor:
    """(B, 6, C, H, W) -> (B, 16, C, H, W)."""
    if frames.ndim != 5:
        raise ValueError(
            f"interpolate_frames: expected frames of shape (B, F, C, H, W), found {tuple(frames.shape)}."
        )
    matrix = interpolation_matrix(frames.shape[1], weights).to(frames)
    return torch.einsum("of,bfchw->bochw", matrix, frames)


def resize_frames(frames: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of (..., C, H, W) frames to size×size (the reference resizes 224² blurry frames to 256²)."""
    if frames.shape[-1] == size and frames.shape[-2] == size:
        return frames
    lead = frames.shape[:-3]
    flat = frames.reshape(-1, *frames.shape[-3:])
    out = F.interpolate(flat, size=(size, size), mode="bilinear", align_corners=False)
    return out.reshape(*lead, *out.shape[-3:])
