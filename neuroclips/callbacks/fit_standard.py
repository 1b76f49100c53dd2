"""The callbacks every fit stage trains with, in their order (the runtime adds ``stage.callbacks`` after them).

``FiniteLossGuard`` first (no checkpoint of a NaN state), then ModelCheckpoint ``best.ckpt`` on the monitor (only
with a monitor), ``last.ckpt`` every epoch, ``last.ckpt`` every N optimizer steps (``checkpoint.every_n_train_steps``,
resumable mid-epoch), the stage/subject/provenance metadata, and the epoch (and RNG streams) handed to the data.

These are the run's contract (resume reads ``checkpoints/last.ckpt``, later stages ``best.ckpt``), not a choice
per run, so they are built here from the facts only the runtime knows rather than from a config group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pytorch_lightning.callbacks import ModelCheckpoint

from neuroclips.callbacks.checkpointing import CheckpointMetadata, EpochToData
from neuroclips.callbacks.finite_loss import FiniteLossGuard


@dataclass
class FitCallbacks:
    """The list for the Trainer, and the two the runtime talks to: ``best`` (its path and score after the fit)
    and ``epoch`` (started at the resumed epoch before the fit)."""

    callbacks: list = field(default_factory=list)
    best: ModelCheckpoint | None = None
    epoch: EpochToData | None = None


def _checkpoint(ckpt_dir: str, filename: str, **kw) -> ModelCheckpoint:
    return ModelCheckpoint(
        dirpath=ckpt_dir, filename=filename, auto_insert_metric_name=False, enable_version_counter=False, **kw
    )


def fit_callbacks(
    ckpt_dir: str,
    stage: str,
    monitor: str | None,
    monitor_mode: str,
    seed: int,
    metadata: dict,
    every_n_train_steps: int | None = None,
) -> FitCallbacks:
    """The standard callbacks of a fit stage writing into ``ckpt_dir`` (see the module docstring for the order)."""
    best = _checkpoint(
        ckpt_dir, "best", monitor=monitor, mode=monitor_mode, save_last=False, save_top_k=1 if monitor else 0
    )
    # last.ckpt is the end of the latest completed epoch, whatever the monitor did (not only when it improved)
    last = _checkpoint(ckpt_dir, "last", monitor=None, save_top_k=1, every_n_epochs=1)
    epoch = EpochToData(seed)
    guard = FiniteLossGuard(stage, monitor)  # before the checkpoints: no save of a NaN state
    # long epochs: last.ckpt also every N optimizer steps, resumable mid-epoch exactly
    steps = (
        [_checkpoint(ckpt_dir, "last", monitor=None, save_top_k=1, every_n_train_steps=every_n_train_steps)]
        if every_n_train_steps
        else []
    )
    # without a monitor there is no best: the runtime then copies the last epoch to best.ckpt
    callbacks = [guard, *([best] if monitor else []), last, *steps, CheckpointMetadata(metadata), epoch]
    return FitCallbacks(callbacks, best, epoch)
