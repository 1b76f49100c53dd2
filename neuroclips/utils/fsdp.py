"""Sharding helpers for Lightning's FSDP strategy, built from config (class paths, not Python objects)."""

from __future__ import annotations

from hydra.utils import get_class


def module_wrap_policy(classes: list[str]):
    """Wrap every module of these classes in its own FSDP unit (e.g. the SR's 1.75 B-parameter ``backbone_linear``
    and the mixer blocks), so only one unit's full parameters are gathered at a time."""
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    return ModuleWrapPolicy({get_class(c) for c in classes})
