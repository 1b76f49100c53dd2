"""The standard callbacks of a fit stage: what ``conf/callbacks/fit.yaml`` builds, entry by entry, in its order.

``FiniteLossGuard`` first (no checkpoint of a NaN state), then ModelCheckpoint ``best.ckpt`` on the monitor (only
with a monitor), ``last.ckpt`` every epoch, ``last.ckpt`` every N optimizer steps (``checkpoint.every_n_train_steps``,
resumable mid-epoch), the stage/subject/provenance metadata, and the epoch (and RNG streams) handed to the data.
The runtime instantiates the entries (its one seam) and adds ``stage.callbacks`` after them.

The checkpoint files are the run's contract (resume reads ``checkpoints/last.ckpt``, later stages ``best.ckpt``),
so their folder is not a config value: the runtime gives it, with the checkpoint metadata (the fingerprint is
known only at run time), as ``run=`` (:class:`FitRun`) to every entry marked ``_partial_: true``. The factories
here return None where today's list has no callback (``best`` without a monitor, ``last_steps`` without a step
count); the runtime leaves those out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pytorch_lightning.callbacks import ModelCheckpoint

from neuroclips.callbacks.checkpointing import CheckpointMetadata, EpochToData


@dataclass(frozen=True)
class FitRun:
    """What only the runtime knows when it builds the fit callbacks (``run=`` of the ``_partial_`` entries)."""

    checkpoint_dir: str  # <run dir>/checkpoints: best.ckpt and last.ckpt are written there
    metadata: dict  # stage, subject(s), scale, fingerprint, provenance, resolved config (CheckpointMetadata)


@dataclass
class FitCallbacks:
    """The list for the Trainer, and the two the runtime talks to: ``best`` (its path and score after the fit)
    and ``epoch`` (started at the resumed epoch before the fit)."""

    callbacks: list = field(default_factory=list)
    best: ModelCheckpoint | None = None
    epoch: EpochToData | None = None


def _checkpoint(ckpt_dir: str, filename: str, **kw) -> ModelCheckpoint:
    """A ModelCheckpoint writing exactly ``<ckpt_dir>/<filename>.ckpt`` (no metric names, no version suffix)."""
    return ModelCheckpoint(
        dirpath=ckpt_dir, filename=filename, auto_insert_metric_name=False, enable_version_counter=False, **kw
    )


def best_checkpoint(run: FitRun, monitor: str | None, mode: str = "min") -> ModelCheckpoint | None:
    """``best.ckpt``: the epoch of the best ``monitor``; None without a monitor (the runtime then copies the last
    epoch to ``best.ckpt``)."""
    if not monitor:
        return None
    return _checkpoint(run.checkpoint_dir, "best", monitor=monitor, mode=mode, save_last=False, save_top_k=1)


def last_checkpoint(
    run: FitRun, every_n_epochs: int | None = None, every_n_train_steps: int | None = None
) -> ModelCheckpoint | None:
    """``last.ckpt`` every ``every_n_epochs`` epochs or every ``every_n_train_steps`` optimizer steps, whatever the
    monitor did (not only when it improved); None when neither is set."""
    if every_n_epochs is None and every_n_train_steps is None:
        return None
    triggers = {"every_n_epochs": every_n_epochs} if every_n_epochs is not None else {}
    if every_n_train_steps is not None:
        triggers["every_n_train_steps"] = every_n_train_steps
    return _checkpoint(run.checkpoint_dir, "last", monitor=None, save_top_k=1, **triggers)


def checkpoint_metadata(run: FitRun) -> CheckpointMetadata:
    """Stage, subject, scale, fingerprint and resolved config in every checkpoint; frozen weights left out."""
    return CheckpointMetadata(run.metadata)
