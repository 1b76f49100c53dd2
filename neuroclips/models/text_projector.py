"""Frozen text projector (NeuroClips ``CLIPProj``): mean-pool the CLIP tokens, then one bias-free matrix.

The reference loads ``coco_tokens_avg_proj.pth`` (one tensor ``proj`` of shape (1664, 1280), trained on MSCOCO by
the authors, code not released) and keeps it frozen (method.md §3.1). At tiny scale it stays randomly initialised.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from neuroclips.utils.weights import UnreadableWeightsError, read_weight_file


class TextProjector(nn.Module):
    """(B, T, clip_dim) -> mean over T -> @ proj -> (B, text_dim). Key: ``proj`` (so ``clipproj.proj`` in a system)."""

    def __init__(self, clip_dim: int = 1664, text_dim: int = 1280, weights_path: str | None = None) -> None:
        super().__init__()
        # standard-normal init as upstream; only matters when no weights file is given (tiny scale)
        self.proj = nn.Parameter(torch.randn(clip_dim, text_dim))
        if weights_path is not None and not self.proj.is_meta:  # dry_run builds on meta: no reading
            load_text_projector(self, weights_path)

    def forward(self, tokens: Tensor) -> Tensor:
        return tokens.mean(dim=1) @ self.proj.to(tokens.dtype)


def load_text_projector(module: TextProjector, weights_path: str, config_field: str = "weights_path") -> None:
    """Load ``proj`` from a ``torch.save``d state dict (``{"proj": (clip_dim, text_dim)}``), weights_only."""
    path = Path(weights_path)
    state = read_weight_file(
        path, config_field, "text projector weights (the reference's coco_tokens_avg_proj.pth)"
    )
    if isinstance(state, dict) and "proj" not in state and "model_state_dict" in state:
        state = state["model_state_dict"]
    if not isinstance(state, dict) or "proj" not in state:
        found = sorted(state)[:5] if isinstance(state, dict) else type(state).__name__
        raise UnreadableWeightsError(
            f"{path}: expected a state dict with key 'proj' (config field '{config_field}'), found {found}."
        )
    proj = state["proj"]
    if tuple(proj.shape) != tuple(module.proj.shape):
        raise UnreadableWeightsError(
            f"{path}: 'proj' (config field '{config_field}') expected shape {tuple(module.proj.shape)}, "
            f"found {tuple(proj.shape)}."
        )
    with torch.no_grad():
        module.proj.copy_(proj)
