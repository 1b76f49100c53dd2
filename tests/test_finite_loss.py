"""FiniteLossGuard: a NaN loss, validation metric or weight stops the fit with one sentence, before any checkpoint
of that state is written; last.ckpt keeps the last good epoch. Also pins the Lightning behaviour it relies on."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from neuroclips.callbacks.finite_loss import FiniteLossGuard
from neuroclips.errors import USER_ERRORS, StageError
from tests.toy.system import ToyRegressor

V = 6
STEPS_PER_EPOCH = 4  # 8 samples, batch 2


class NaNToy(ToyRegressor):
    """ToyRegressor whose training loss is NaN at optimizer step ``nan_at`` (0-based, ``self.global_step``), whose
    val/loss is NaN from epoch ``val_nan_epoch``, and whose weights become Inf after step ``inf_weights_after``."""

    def __init__(
        self,
        nan_at: int | None = None,
        val_nan_epoch: int | None = None,
        inf_weights_after: int | None = None,
        rank_only: int | None = None,
    ):
        super().__init__(voxels=V, lr=1e-2)
        self.nan_at, self.val_nan_epoch, self.inf_weights_after, self.rank_only = (
            nan_at,
            val_nan_epoch,
            inf_weights_after,
            rank_only,
        )

    def _mine(self) -> bool:
        return self.rank_only is None or self.global_rank == self.rank_only

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        if self.global_step == self.nan_at and self._mine():
            loss = loss * float("nan")  # NaN gradients: AdamW turns every trained weight into NaN
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx):  # runs after the callbacks' on_train_batch_end
        if self.inf_weights_after is not None and self.global_step == self.inf_weights_after:
            with torch.no_grad():
                self.net.weight[0, 0] = float("inf")

    def validation_step(self, batch, batch_idx):
        loss = self._loss(batch)
        if (
            self.val_nan_epoch is not None
            and self.current_epoch >= self.val_nan_epoch
            and not self.trainer.sanity_checking
        ):
            loss = loss * float("nan")
        self.log("val/loss", loss)


def _loader(n: int = 8) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    items = [
        {"fmri": torch.randn(V, generator=g), "keyframe": torch.rand(3, 4, 4, generator=g)} for _ in range(n)
    ]
    return DataLoader(items, batch_size=2)


def _trainer(tmp_path: Path, callbacks: list, epochs: int = 5, **kw) -> pl.Trainer:
    kw.setdefault("devices", 1)
    return pl.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        callbacks=callbacks,
        num_sanity_val_steps=kw.pop("num_sanity_val_steps", 0),
        **kw,
    )


def _ckpt(tmp_path: Path, **kw) -> ModelCheckpoint:
    kw.setdefault(
        "save_top_k", 1
    )  # with save_top_k=0, Lightning 2.6 writes last.ckpt only when training ends
    kw.setdefault("filename", "latest")
    return ModelCheckpoint(dirpath=str(tmp_path / "checkpoints"), save_last=True, every_n_epochs=1, **kw)


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def _finite(state: dict) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


def _assert_good_last(tmp_path: Path, epoch: int) -> None:
    ckpt = _load(tmp_path / "checkpoints" / "last.ckpt")
    assert ckpt["epoch"] == epoch and ckpt["global_step"] == (epoch + 1) * STEPS_PER_EPOCH
    assert _finite(ckpt["state_dict"])
    fresh = ToyRegressor(voxels=V)
    fresh.load_state_dict(ckpt["state_dict"])  # loads, with finite weights
    assert all(bool(torch.isfinite(p).all()) for p in fresh.parameters())


@pytest.mark.parametrize("guard_first", [True, False])
def test_nan_loss_stops_before_any_checkpoint(tmp_path, guard_first):
    guard, ckpt = FiniteLossGuard("sr"), _ckpt(tmp_path)
    callbacks = (
        [guard, ckpt] if guard_first else [ckpt, guard]
    )  # Lightning moves ModelCheckpoint last either way
    model = NaNToy(nan_at=2 * STEPS_PER_EPOCH + 1)  # epoch 2, its second batch
    trainer = _trainer(tmp_path, callbacks)
    with pytest.raises(StageError) as err:
        trainer.fit(model, train_dataloaders=_loader())
    assert str(err.value) == (
        "stage 'sr': the training loss became non-finite (nan) at epoch 2, step 10 (batch 1); last.ckpt keeps the "
        "last completed epoch (epoch 1, step 8); lower the learning rate or check the data (cached targets?)."
    )
    assert isinstance(err.value, USER_ERRORS)  # exit 2, one sentence
    assert not all(bool(torch.isfinite(p).all()) for p in model.parameters())  # the live state is bad ...
    _assert_good_last(tmp_path, epoch=1)  # ... and was not saved
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["last.ckpt", "latest.ckpt"]
    assert _load(tmp_path / "checkpoints" / "latest.ckpt")["epoch"] == 1


def test_nan_loss_with_per_step_checkpoints_and_validation(tmp_path):
    """ModelCheckpoint saving every step (and best on val/loss): the last save is the step before the NaN."""
    every_step = ModelCheckpoint(
        dirpath=str(tmp_path / "steps"),
        filename="step{step}",
        every_n_train_steps=1,
        save_top_k=-1,
        save_last=True,
    )
    best = _ckpt(tmp_path, monitor="val/loss", save_top_k=1, filename="best")
    trainer = _trainer(tmp_path, [every_step, best, FiniteLossGuard("pr", monitor="val/loss")])
    with pytest.raises(
        StageError, match=r"at epoch 1, step 7 \(batch 2\); last.ckpt keeps .* \(epoch 1, step 6\)"
    ):
        trainer.fit(NaNToy(nan_at=6), train_dataloaders=_loader(), val_dataloaders=_loader(4))
    saved = {int(_load(p)["global_step"]) for p in (tmp_path / "steps").glob("step*.ckpt")}
    assert max(saved) == 6
    for p in [*(tmp_path / "steps").glob("*.ckpt"), *(tmp_path / "checkpoints").glob("*.ckpt")]:
        assert _finite(_load(p)["state_dict"]), p
    assert _load(tmp_path / "checkpoints" / "best.ckpt")["epoch"] == 0


@pytest.mark.parametrize("guard_first", [True, False])
def test_nan_val_metric_stops_before_checkpoint(tmp_path, guard_first):
    guard = FiniteLossGuard("sr", monitor="val/loss")
    ckpt = _ckpt(tmp_path, monitor="val/loss", save_top_k=1, filename="best")
    trainer = _trainer(tmp_path, [guard, ckpt] if guard_first else [ckpt, guard], num_sanity_val_steps=2)
    with pytest.raises(StageError) as err:
        trainer.fit(NaNToy(val_nan_epoch=2), train_dataloaders=_loader(), val_dataloaders=_loader(4))
    assert str(err.value) == (
        "stage 'sr': the validation metric 'val/loss' became non-finite (nan) at epoch 2, step 12; last.ckpt keeps "
        "the last completed epoch (epoch 1, step 8); lower the learning rate or check the data (cached targets?)."
    )
    _assert_good_last(tmp_path, epoch=1)
    assert _load(tmp_path / "checkpoints" / "best.ckpt")["epoch"] <= 1


def test_nan_val_metric_in_sanity_check_is_ignored(tmp_path):
    class SanityNaN(NaNToy):
        def validation_step(self, batch, batch_idx):
            nan = float("nan") if self.trainer.sanity_checking else 1.0
            self.log("val/loss", self._loss(batch) * nan)

    trainer = _trainer(
        tmp_path,
        [FiniteLossGuard("sr", monitor="val/loss"), _ckpt(tmp_path)],
        epochs=1,
        num_sanity_val_steps=1,
    )
    trainer.fit(SanityNaN(), train_dataloaders=_loader(), val_dataloaders=_loader(4))
    _assert_good_last(tmp_path, epoch=0)


def test_inf_weights_with_finite_loss_stop_at_the_save(tmp_path):
    """A finite loss whose step leaves Inf weights at the end of an epoch: the save is refused, not written."""
    trainer = _trainer(tmp_path, [FiniteLossGuard("pr"), _ckpt(tmp_path)])
    with pytest.raises(StageError) as err:
        trainer.fit(NaNToy(inf_weights_after=2 * STEPS_PER_EPOCH), train_dataloaders=_loader())
    assert str(err.value) == (
        "stage 'pr': the weights became non-finite (1 of 2 parameter tensors) at epoch 1, step 8, before a checkpoint "
        "was saved; last.ckpt keeps the last completed epoch (epoch 0, step 4); lower the learning rate or check the "
        "data (cached targets?)."
    )
    _assert_good_last(tmp_path, epoch=0)


def test_first_epoch_nan_says_nothing_was_saved(tmp_path):
    trainer = _trainer(tmp_path, [FiniteLossGuard("sr"), _ckpt(tmp_path)])
    with pytest.raises(
        StageError, match=r"at epoch 0, step 2 \(batch 1\); no checkpoint was saved before it; lower"
    ):
        trainer.fit(NaNToy(nan_at=1), train_dataloaders=_loader())
    assert not (tmp_path / "checkpoints").exists() or not list((tmp_path / "checkpoints").iterdir())


def test_inf_loss_and_dict_outputs(tmp_path):
    class InfDict(NaNToy):
        def training_step(self, batch, batch_idx):
            loss = self._loss(batch) * (float("inf") if self.global_step == 3 else 1.0)
            return {"loss": loss, "other": torch.tensor(float("nan"))}  # only "loss" is checked

    trainer = _trainer(tmp_path, [FiniteLossGuard("sr"), _ckpt(tmp_path)])
    with pytest.raises(StageError, match=r"non-finite \(inf\) at epoch 0, step 4 \(batch 3\)"):
        trainer.fit(InfDict(), train_dataloaders=_loader())


def test_skipped_batches_and_finite_runs_pass(tmp_path):
    class Skips(NaNToy):
        def training_step(self, batch, batch_idx):
            return None if batch_idx == 1 else super().training_step(batch, batch_idx)  # Lightning skips None

    trainer = _trainer(tmp_path, [FiniteLossGuard("sr", monitor="val/loss"), _ckpt(tmp_path)], epochs=2)
    trainer.fit(Skips(), train_dataloaders=_loader(), val_dataloaders=_loader(4))
    ckpt = _load(tmp_path / "checkpoints" / "last.ckpt")
    assert ckpt["epoch"] == 1 and _finite(ckpt["state_dict"])


def test_guard_turns_off_save_on_exception(tmp_path):
    ckpt = _ckpt(tmp_path, save_on_exception=True)
    trainer = _trainer(tmp_path, [FiniteLossGuard("sr"), ckpt])
    with pytest.raises(StageError):
        trainer.fit(NaNToy(nan_at=2 * STEPS_PER_EPOCH + 1), train_dataloaders=_loader())
    for p in (tmp_path / "checkpoints").glob("*.ckpt"):
        assert _finite(_load(p)["state_dict"]), p
    _assert_good_last(tmp_path, epoch=1)


# ------------------------------------------------------------------ the Lightning behaviour the guard relies on
class _NaNStopper(pl.Callback):
    """The rejected alternative: ask the trainer to stop (what EarlyStopping(check_finite=True) does)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if not math.isfinite(float(outputs["loss"])):
            trainer.should_stop = True


class _Raiser(pl.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if not math.isfinite(float(outputs["loss"])):
            raise RuntimeError("non-finite")


def test_lightning_should_stop_would_save_the_nan_state(tmp_path):
    trainer = _trainer(tmp_path, [_NaNStopper(), _ckpt(tmp_path)])
    trainer.fit(NaNToy(nan_at=2 * STEPS_PER_EPOCH + 1), train_dataloaders=_loader())
    last = _load(tmp_path / "checkpoints" / "last.ckpt")
    assert last["epoch"] == 2 and not _finite(last["state_dict"])  # why the guard raises instead


def test_lightning_exception_in_batch_end_saves_nothing_by_default(tmp_path):
    trainer = _trainer(
        tmp_path, [_ckpt(tmp_path), _Raiser()]
    )  # listed after ModelCheckpoint: still runs first
    assert isinstance(trainer.callbacks[-1], ModelCheckpoint)  # Lightning moved the checkpoint callback last
    with pytest.raises(RuntimeError, match="non-finite"):
        trainer.fit(NaNToy(nan_at=2 * STEPS_PER_EPOCH + 1), train_dataloaders=_loader())
    _assert_good_last(tmp_path, epoch=1)


def test_lightning_save_on_exception_would_save_the_nan_state(tmp_path):
    trainer = _trainer(tmp_path, [_Raiser(), _ckpt(tmp_path, save_on_exception=True)])
    with pytest.raises(RuntimeError):
        trainer.fit(NaNToy(nan_at=2 * STEPS_PER_EPOCH + 1), train_dataloaders=_loader())
    assert not _finite(
        _load(tmp_path / "checkpoints" / "last.ckpt")["state_dict"]
    )  # why the guard turns it off


def test_lightning_save_top_k_0_writes_last_only_at_the_end(tmp_path):
    """ModelCheckpoint(save_top_k=0, save_last=True) writes no last.ckpt at epoch ends (only at on_train_end): a
    fit killed mid-way then has nothing to resume from."""
    trainer = _trainer(tmp_path, [_ckpt(tmp_path, save_top_k=0), FiniteLossGuard("sr")])
    with pytest.raises(StageError, match="no checkpoint was saved before it"):
        trainer.fit(NaNToy(nan_at=2 * STEPS_PER_EPOCH + 1), train_dataloaders=_loader())
    assert not (tmp_path / "checkpoints" / "last.ckpt").exists()


@pytest.mark.slow
def test_ddp_nan_on_one_rank_stops_all_ranks(tmp_path):
    """Two gloo ranks, NaN loss on rank 1 only: the decision is reduced over ranks, so no rank waits forever in the
    next collective, and last.ckpt (rank 0 writes it) is the last good epoch."""
    trainer = _trainer(tmp_path, [FiniteLossGuard("sr"), _ckpt(tmp_path)], strategy="ddp_spawn", devices=2)
    with pytest.raises(
        Exception,
        match=r"the training loss became non-finite \((nan|on another rank)\) at epoch 2, "
        r"step 6 \(batch 1\)",
    ):
        trainer.fit(
            NaNToy(nan_at=2 * 2 + 1, rank_only=1), train_dataloaders=_loader()
        )  # 2 steps per epoch and rank
    last = _load(tmp_path / "checkpoints" / "last.ckpt")
    assert last["epoch"] == 1 and _finite(last["state_dict"])
