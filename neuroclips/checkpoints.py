"""Checkpoints that know which stage and subject made them, and loading them into the next stage's nets."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from neuroclips.errors import UserError
from neuroclips.utils.weights import is_meta, require_file


class CheckpointMismatchError(UserError, ValueError):
    """A checkpoint from another stage or subject than the configuration expects."""


def read_checkpoint(path: str | Path, field: str = "checkpoint") -> dict:
    p = require_file(path, field, "checkpoint of an earlier stage")
    try:
        # Lightning checkpoints hold plain containers, tensors and our metadata: weights_only is enough
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or foreign file
        raise CheckpointMismatchError(f"{p}: cannot be read as a neuroclips checkpoint ({type(e).__name__}: {e}).") from e


def checkpoint_meta(ckpt: dict) -> dict:
    return dict(ckpt.get("neuroclips") or {})


def check_meta(path, ckpt: dict, expected_stage: str | list[str] | None, expected_subj: int | None) -> dict:
    meta = checkpoint_meta(ckpt)
    if not meta:
        raise CheckpointMismatchError(f"{path}: not a neuroclips checkpoint (no 'neuroclips' metadata: stage, subj).")
    stages = [expected_stage] if isinstance(expected_stage, str) else expected_stage
    if stages and meta.get("stage") not in stages:
        raise CheckpointMismatchError(
            f"{path}: checkpoint of stage '{meta.get('stage')}', expected stage {' or '.join(repr(s) for s in stages)}."
        )
    if expected_subj is not None and meta.get("subj") is not None and int(meta["subj"]) != int(expected_subj):
        raise CheckpointMismatchError(
            f"{path}: checkpoint of subject {meta['subj']}, expected subject {expected_subj} (subj={expected_subj})."
        )
    return meta


def load_into(
    module: nn.Module,
    path: str,
    expected_stage: str | list[str] | None = None,
    expected_subj: int | None = None,
    prefix: str = "",
    strict: bool = True,
    field: str = "checkpoint",
) -> nn.Module:
    """Load the weights under ``prefix`` of a Lightning checkpoint into ``module`` and return it.

    ``prefix`` selects a sub-tree of the system's state dict (e.g. ``"net."``); it is stripped before loading.
    On the ``meta`` device (dry runs) nothing is read.
    """
    if is_meta(module):
        return module
    ckpt = read_checkpoint(path, field)
    check_meta(path, ckpt, expected_stage, expected_subj)
    sd = ckpt.get("state_dict", ckpt)
    if prefix:
        sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        if not sd:
            raise CheckpointMismatchError(f"{path}: no weights under prefix '{prefix}' in this checkpoint.")
    result = module.load_state_dict(sd, strict=strict)
    if strict is False and result.missing_keys:
        own = {k for k, _ in module.named_parameters()}
        missing = [k for k in result.missing_keys if k in own]
        if missing:
            raise CheckpointMismatchError(f"{path}: {len(missing)} parameters missing, e.g. {missing[:3]}.")
    return module
