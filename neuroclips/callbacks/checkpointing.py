"""Checkpoint plumbing: atomic writes, stage/subject metadata, frozen weights left out, epoch to the data."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.plugins.io import TorchCheckpointIO

from neuroclips.utils.atomic import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save into a temporary file beside the target, fsync, then rename: a kill never truncates a checkpoint."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                # through a Python file: a full disk then raises OSError(ENOSPC), not torch's opaque RuntimeError
                torch.save(checkpoint, fh)
        except OSError as e:
            raise OSError(e.errno, e.strerror, str(path)) from e

    def remove_checkpoint(self, path) -> None:
        if os.path.exists(path):
            Path(path).unlink()


def frozen_prefixes(pl_module: pl.LightningModule) -> tuple[str, ...]:
    return tuple(getattr(pl_module, "frozen_prefixes", ()) or ())


class CheckpointMetadata(pl.Callback):
    """Embed ``{stage, subj, scale, config}`` in every checkpoint and drop frozen submodules' weights from it."""

    def __init__(self, metadata: dict):
        self.metadata = metadata

    def setup(self, trainer, pl_module, stage: str) -> None:
        if frozen_prefixes(pl_module):
            pl_module.strict_loading = (
                False  # frozen weights are rebuilt from their own files, not the checkpoint
            )

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["neuroclips"] = self.metadata
        prefixes = frozen_prefixes(pl_module)
        if prefixes and "state_dict" in checkpoint:
            checkpoint["state_dict"] = {
                k: v for k, v in checkpoint["state_dict"].items() if not k.startswith(prefixes)
            }


class EpochToData(pl.Callback):
    """Tell the datasets the epoch (reference repetition/keyframe policies depend on it), before loaders iterate,
    and reseed every RNG from ``(seed, epoch)``: each epoch's randomness (shuffle, dropout, MixCo draws) then does
    not depend on what ran before it, so a run resumed from an epoch-end checkpoint replays exactly."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._seeded_epoch: int | None = None

    def _reseed(self, epoch: int, rank: int) -> None:
        pl.seed_everything((self.seed * 100_003 + epoch * 7919 + rank) % (2**31), workers=True, verbose=False)
        self._seeded_epoch = epoch

    def start(self, epoch: int, rank: int) -> None:
        """Called by the runtime right before ``fit``: the first epoch's iterator is created before any hook."""
        self._reseed(epoch, rank)

    def start_mid_epoch(self, epoch: int, rank: int, rng_states: list[dict] | None) -> None:
        """A resume from a mid-epoch (every-N-steps) checkpoint: the epoch's seed as usual (its iterator draws
        from it), then, at the first batch, every RNG exactly as it was when the checkpoint was written."""
        self._reseed(epoch, rank)
        self._restore = rng_states[rank] if rng_states and rank < len(rng_states) else None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        state = getattr(self, "_restore", None)
        if state is not None:
            _set_rng_state(state)
            self._restore = None

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        # every rank's RNG state (all ranks build the checkpoint; rank 0 writes it): a mid-epoch resume replays
        state = _rng_state()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            states: list = [None] * dist.get_world_size()
            dist.all_gather_object(states, state)
        else:
            states = [state]
        checkpoint["neuroclips_rng"] = states

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        dm = trainer.datamodule
        if dm is not None and hasattr(dm, "set_epoch"):
            dm.set_epoch(trainer.current_epoch)
        if self._seeded_epoch != trainer.current_epoch:
            self._reseed(trainer.current_epoch, trainer.global_rank)


def _rng_state() -> dict:
    """torch, numpy, Python (and CUDA) RNG states as tensors and plain containers (loadable with weights_only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {
            "version": int(version),
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss": gauss,
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["internal"].tolist()), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
