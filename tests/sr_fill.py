"""Deterministic weight fill of mindeye2-layout.md §8.1 (shared by the SR equivalence tests and the scratch check)."""

from __future__ import annotations

import math

import torch
from torch import nn


def sine(n: int, offset: float, step: float = 0.37) -> torch.Tensor:
    m = torch.arange(n, dtype=torch.float64)
    return torch.sin(step * m + offset)


def deterministic_fill(module: nn.Module) -> None:
    """Fill every state-dict entry except rotary ``freqs`` and scheduler buffers with the §8.1 sine pattern."""
    state = module.state_dict()
    keys = sorted(
        k for k in state if not k.endswith("rotary_emb.freqs") and not k.startswith("noise_scheduler.")
    )
    filled = {}
    for i, key in enumerate(keys):
        t = state[key]
        v = sine(t.numel(), 0.1 * (i + 1)).reshape(t.shape)
        if t.dim() == 1:
            v = 1 + 0.1 * v if (key.endswith(".g") or key.endswith(".weight")) else 0.1 * v
        else:
            v = v / math.sqrt(t.shape[-1])
        filled[key] = v.float()
    module.load_state_dict(filled, strict=False)


def sine_input(shape: tuple[int, ...], phase: float) -> torch.Tensor:
    n = math.prod(shape)
    m = torch.arange(n, dtype=torch.float64)
    return torch.sin(0.05 * (m + 1) + phase).reshape(shape).float()
