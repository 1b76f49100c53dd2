"""Helpers for frozen weights loaded from local paths (never fetched at run time)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from neuroclips.errors import UserError


class MissingWeightsError(UserError, FileNotFoundError):
    """A weight file that the configuration names is not on disk."""


def is_meta(module: nn.Module) -> bool:
    """True when the module's parameters live on the ``meta`` device (dry runs): skip every file read."""
    p = next(iter(module.parameters()), None)
    if p is None:
        p = next(iter(module.buffers()), None)
    return p is not None and p.device.type == "meta"


def require_file(path: str | Path, field: str, what: str) -> Path:
    """Return ``path`` if it exists, else raise one sentence naming the config field and what belongs there."""
    p = Path(str(path))
    if not p.exists():
        raise MissingWeightsError(
            f"{p}: {what} not found (config field '{field}'); put the file there or point '{field}' at it "
            f"(see README, 'Real data and weights')."
        )
    return p


def load_state_dict_file(path: str | Path, field: str, what: str) -> dict:
    """Read a state dict safely (``weights_only=True``; safetensors when the suffix says so)."""
    p = require_file(path, field, what)
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    return torch.load(p, map_location="cpu", weights_only=True)
