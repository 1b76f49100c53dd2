"""Stop a fit the moment its loss, monitored validation metric or weights become NaN/Inf, before any checkpoint of
that state is written, with one sentence saying where (a ``StageError``: a user error, exit 2).

Why raising, and where (verified on pytorch_lightning 2.6, ``tests/test_finite_loss.py``):

* An exception raised in a callback hook propagates out of ``trainer.fit``; Lightning then calls ``on_exception`` on
  every callback, and ``ModelCheckpoint.on_exception`` saves only when ``save_on_exception=True`` (default False).
  The guard turns that flag off on the trainer's checkpoint callbacks before it raises, so no save of the bad state
  happens on the way out either.
* Setting ``trainer.should_stop`` instead (what ``EarlyStopping(check_finite=True)`` does) ends the epoch normally,
  and ModelCheckpoint then writes ``last.ckpt`` of the NaN weights: not used here.
* Hook order: Lightning calls callbacks in list order, but moves every ModelCheckpoint to the end of the list
  (``_CallbackConnector._reorder_callbacks``), so the guard's ``on_train_batch_end`` and ``on_validation_end`` run
  before ModelCheckpoint's wherever it is listed. List it before ModelCheckpoint anyway, to say what is meant.
* A finite loss can still leave non-finite weights (an Inf gradient in the last step of an epoch); a checkpoint
  save then calls ``on_save_checkpoint`` before anything is written, and the guard raises there.

Under DDP/FSDP every check is reduced over ranks (one tiny all-reduce per training step), so all ranks raise
together instead of the healthy ones waiting forever in the next collective.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn

from neuroclips.errors import StageError

log = logging.getLogger("neuroclips")

ADVICE = "lower the learning rate or check the data (cached targets?)"


class FiniteLossGuard(pl.Callback):
    """Raise ``StageError`` when the training loss (every batch), the monitored validation metric (every validation
    that is not a sanity check) or, at a checkpoint save, a trainable weight is NaN/Inf.

    The message names Lightning's 0-based ``current_epoch`` and ``trainer.global_step`` (optimizer steps taken, the
    bad one included), and the epoch/step of the last checkpoint this fit wrote.

    Args:
        stage: the stage name, for the message.
        monitor: the validation metric to check (``stage.monitor``); None: validation is not checked.
        check_weights: check the trainable parameters before every checkpoint save.
    """

    def __init__(self, stage: str, monitor: str | None = None, check_weights: bool = True):
        self.stage = stage
        self.monitor = monitor
        self.check_weights = check_weights
        self._last_saved: tuple[int, int] | None = None  # (epoch, global step) of the last checkpoint written

    # ------------------------------------------------------------------------------------------- hooks
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        value = _nonfinite(loss)
        if trainer.strategy.reduce_boolean_decision(value is not None, all=False):  # every rank, every step
            self._fail(
                trainer,
                f"the training loss became non-finite ({_show(value)}) at epoch "
                f"{trainer.current_epoch}, step {trainer.global_step} (batch {batch_idx})",
            )

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.monitor is None or trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return  # an untrained model may have an undefined metric; nothing is saved during the sanity check
        metric = trainer.callback_metrics.get(self.monitor)
        value = _nonfinite(metric)
        if trainer.strategy.reduce_boolean_decision(value is not None, all=False):
            self._fail(
                trainer,
                f"the validation metric '{self.monitor}' became non-finite ({_show(value)}) at "
                f"epoch {trainer.current_epoch}, step {trainer.global_step}",
            )

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict
    ) -> None:
        # Called while the checkpoint dict is being built, before anything is written.
        if self.check_weights:
            params = [
                p for p in pl_module.parameters() if p.requires_grad and p.is_floating_point() and p.numel()
            ]
            finite = torch.stack([torch.isfinite(p.detach()).all() for p in params]) if params else None
            n_bad = int((~finite).sum()) if finite is not None else 0
            if trainer.strategy.reduce_boolean_decision(n_bad > 0, all=False):
                what = f"{n_bad} of {len(params)} parameter tensors" if n_bad else "on another rank"
                self._fail(
                    trainer,
                    f"the weights became non-finite ({what}) at epoch {trainer.current_epoch}, "
                    f"step {trainer.global_step}, before a checkpoint was saved",
                )
        self._last_saved = (trainer.current_epoch, trainer.global_step)

    # ------------------------------------------------------------------------------------------- helpers
    def _fail(self, trainer: pl.Trainer, what: str) -> None:
        for (
            cb
        ) in trainer.checkpoint_callbacks:  # ModelCheckpoint(save_on_exception=True) would save the bad state
            if getattr(cb, "save_on_exception", False):
                cb.save_on_exception = False
                log.info("not saving a checkpoint on this exception (the state is not finite)")
        raise StageError(f"stage '{self.stage}': {what}; {self._kept(trainer)}; {ADVICE}.")

    def _kept(self, trainer: pl.Trainer) -> str:
        last = next(
            (
                cb.last_model_path
                for cb in trainer.checkpoint_callbacks
                if getattr(cb, "last_model_path", "") and os.path.exists(cb.last_model_path)
            ),
            "",
        )
        name = os.path.basename(last) if last else "last.ckpt"
        if self._last_saved is not None:
            epoch, step = self._last_saved
            return f"{name} keeps the last completed epoch (epoch {epoch}, step {step})"
        if last:
            return f"{name} keeps the last completed epoch"
        return "no checkpoint was saved before it"


def _nonfinite(t) -> float | None:
    """The first NaN/Inf value in ``t`` (a tensor or a number), or None when it is finite or not a number."""
    if isinstance(t, torch.Tensor):
        t = t.detach()
        if not (t.is_floating_point() or t.is_complex()) or bool(torch.isfinite(t).all()):
            return None
        return float(t[~torch.isfinite(t)].flatten()[0].real)
    if isinstance(t, float) and not math.isfinite(t):
        return t
    return None


def _show(value: float | None) -> str:
    if value is None:
        return "on another rank"
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
