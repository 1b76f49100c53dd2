"""A toy fit stage for runtime tests: linear regression from voxels to the keyframe's mean colour."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn


class ToyRegressor(pl.LightningModule):
    frozen_prefixes = ("frozen.",)

    def __init__(self, voxels: int, lr: float = 1e-3, net: nn.Module | None = None, noise: float = 0.0):
        super().__init__()
        self.noise = noise  # > 0: training draws from the global RNG (like dropout), for exact-resume tests
        self.net = net if net is not None else nn.Linear(voxels, 3)
        self.frozen = nn.Linear(3, 3).requires_grad_(False)  # stands in for a frozen encoder
        self.lr = lr

    def _loss(self, batch):
        target = batch["keyframe"].mean(dim=(2, 3))
        return nn.functional.mse_loss(self.net(batch["fmri"]), target)

    def training_step(self, batch, batch_idx):
        if self.noise:
            batch = {**batch, "fmri": batch["fmri"] + self.noise * torch.randn_like(batch["fmri"])}
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self._loss(batch), prog_bar=True, sync_dist=True)

    def predict_step(self, batch, batch_idx):
        colour = self.net(batch["fmri"]).clamp(0, 1)
        img = colour[:, :, None, None].expand(-1, -1, 8, 8)
        return {
            "clip_index": batch["clip_index"],
            "keyframe": img,
            "video": img[:, None].expand(-1, 2, -1, -1, -1),
            "caption": [f"clip {int(c)}" for c in batch["clip_index"]],
        }

    def configure_optimizers(self):
        return torch.optim.AdamW(self.net.parameters(), lr=self.lr)

    def dry_run_forward(self, batch_size: int):
        return self.net(torch.zeros(batch_size, self.net.in_features))


class SlowDown(pl.Callback):
    """Sleep after each training batch, so a test can kill a fit in the middle of an epoch."""

    def __init__(self, seconds: float = 0.05):
        self.seconds = seconds

    def on_train_batch_end(self, *args, **kwargs):
        import time

        time.sleep(self.seconds)
