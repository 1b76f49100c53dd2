"""Helpers for frozen weights loaded from local paths (never fetched at run time)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from neuroclips.errors import UserError


class MissingWeightsError(UserError, FileNotFoundError):
    """A weight file that the configuration names is not on disk."""


class UnreadableWeightsError(UserError, ValueError):
    """A weight file that is there but holds no readable tensors (or pickles that were not trusted)."""


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


def _is_pickle_refusal(path: Path, err: Exception) -> bool:
    """torch refused pickled objects (weights_only) rather than failing to read the file at all."""
    with open(path, "rb") as fh:  # a pickle (legacy torch format) starts with its protocol byte 0x80
        looks_like_torch = fh.read(1) == b"\x80" or zipfile.is_zipfile(path)
    return looks_like_torch and "weights only" in str(err).lower()


def read_weight_file(
    path: str | Path, field: str, what: str, trust_pickle: bool = False, trust_field: str | None = None
) -> Any:
    """The one reader of local weight files: ``.safetensors`` through safetensors, anything else through
    ``torch.load(weights_only=True)``. A file that holds pickled objects other than tensors is unpickled only when
    ``trust_pickle`` (the config key ``trust_field``) says so: unpickling can run code. Returns what the file holds.
    """
    p = require_file(path, field, what)
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - every unreadable file gets the same one sentence
        refused = _is_pickle_refusal(p, err)
        if refused and trust_pickle:
            return torch.load(p, map_location="cpu", weights_only=False)
        if refused:
            hint = (
                f"set {trust_field}=true if you trust the file" if trust_field else "save its tensors alone"
            )
            found = f"pickled Python objects other than tensors (refused: unpickling can run code; {hint})"
        else:
            found = "a file torch cannot read"
        raise UnreadableWeightsError(
            f"{p}: expected {what} (config field '{field}'), found {found}."
        ) from None
