"""Stage `blurry`: predict 6 blurry frames per clip from fMRI with a trained `pr` net (method.md §6).

voxels -> PerceptualNet latents -> frozen VAE decode -> (B, 6, 3, H, W) in [0, 1]; the runtime's writer stores
them per clip as uint8 in the outputs store (kind `blurry`), so the stage resumes and shards freely.

Temporal window and batches: with `temporal_window=clip` every clip is decoded on its own and the result does
not depend on batching, resuming or DDP sharding. With `batch` (the reference, and the default because it is the
training window) the frames of the whole prediction batch attend to each other, so a clip's output depends on its
batch neighbours: it matches training only when a batch holds consecutive clips. A resumed run (only missing clips
are predicted) changes the neighbours; under DDP the stage's `datamodule.shard: contiguous` gives each rank one
consecutive block of clips, so only the clips at a block's edges see other neighbours than in one process.
This module warns once when a batch is not a run of consecutive clip indices; use `clip` (or a single process
and a fresh output folder) when bitwise-stable outputs matter.

`batch_size_frames` is the reference's inference window (src/recon_blurry.py: `model.backbone(voxel_ridge,
time=batch_size)` with the loader's batch of `batch_size` clips): windows of as many *frames* as the batch has
clips, laid over the batch's clip-major frames, so they cross clip boundaries (10 clips: 6 windows of 10 frames).
"""

from __future__ import annotations

import logging

import pytorch_lightning as pl
import torch
from torch import Tensor

from neuroclips.models.frozen_vae import VaeLatentEncoder
from neuroclips.models.perceptual import PerceptualNet, validate_temporal_window

log = logging.getLogger("neuroclips")
BATCH_SIZE_FRAMES = "batch_size_frames"  # the reference's recon_blurry.py window (see the module docstring)


def is_consecutive(clip_index: Tensor) -> bool:
    return bool(clip_index.numel() < 2 or torch.all(clip_index[1:] - clip_index[:-1] == 1))


class BlurryVideoPredictor(pl.LightningModule):
    frozen_prefixes = ("vae.",)

    def __init__(
        self,
        *,
        net: PerceptualNet,
        vae: VaeLatentEncoder,
        temporal_window: str | int | None = None,
        training_window: str | int = "batch",
    ) -> None:
        """`temporal_window=None` uses `training_window`, the window the `pr` net was trained with."""
        super().__init__()
        temporal_window = training_window if temporal_window is None else temporal_window
        if temporal_window != BATCH_SIZE_FRAMES:
            validate_temporal_window(temporal_window)
        self.net, self.vae = net.requires_grad_(False), vae
        self.temporal_window = temporal_window
        self._warned = False

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        clip_index = batch["clip_index"]
        if self.temporal_window != "clip" and not is_consecutive(clip_index) and not self._warned:
            log.warning(
                "stage blurry: temporal_window=%s but a prediction batch holds non-consecutive clips %s...; "
                "outputs depend on batch neighbours (resume or DDP sharding); use system.temporal_window=clip "
                "for batching-independent outputs.",
                self.temporal_window,
                clip_index[:4].tolist(),
            )
            self._warned = True
        if self.temporal_window == BATCH_SIZE_FRAMES:
            latents = self.reference_window_latents(batch["fmri"])
        else:
            latents = self.net(batch["fmri"], self.temporal_window)["latents"]
        frames = self.vae.decode(latents.flatten(0, 1).float())
        blurry = frames.reshape(*latents.shape[:2], *frames.shape[1:])
        return {"clip_index": clip_index, "blurry": blurry}

    def reference_window_latents(self, voxels: Tensor) -> Tensor:
        """PerceptualNet's latents with the decoder's temporal window = the number of clips in the batch (frames)."""
        net, clips = self.net, voxels.shape[0]
        maps = net.low_level(net.backbone(net.ridge(net.inception(voxels))))
        latents = net.decoder(maps, clips)
        return latents.reshape(clips, net.frames_per_clip, *latents.shape[1:])
