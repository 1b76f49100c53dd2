"""Stage ``sr_prior``: train the diffusion prior on top of the frozen ``sr`` nets (method.md §3.3, stage 2).

Loss: ``prior_weight`` x prior MSE (x0 prediction) + SoftCLIP on the frozen clip_voxels (no gradient reaches a
trainable weight; kept in the total for parity with the reference's logged loss) + ``text_weight`` x
InfoNCE(text_projector(prior_out), caption embedding). The frozen nets stay in ``train()`` mode by default
(``frozen_mode="train"``, reference), so the backbone's dropout perturbs the prior's condition.
Validation: prior loss at seeded timesteps/noise, clip_voxels retrieval, and retrieval of 20-step prior samples.
Several subjects (a multi-subject ``sr`` checkpoint): each subject's clips go through its frozen adapter, one prior
for all; validation metrics per subject and their mean (neuroclips.systems.multi_subject).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from neuroclips.losses import contrastive as C
from neuroclips.models.frozen_clip import ClipImageTokenEncoder
from neuroclips.models.prior import BrainDiffusionPrior
from neuroclips.models.semantic import RidgeAdapters, SemanticBackbone
from neuroclips.models.text_projector import TextProjector
from neuroclips.systems.multi_subject import batch_parts
from neuroclips.systems.semantic import SemanticReconstructor, flat_normalize


class SemanticPriorReconstructor(SemanticReconstructor):
    frozen_prefixes: tuple[str, ...] = (
        "image_encoder.",
    )  # the sr nets stay in the checkpoint: self-contained

    def __init__(
        self,
        ridge: RidgeAdapters,
        backbone: SemanticBackbone,
        diffusion_prior: BrainDiffusionPrior,
        optimizer: Callable[..., torch.optim.Optimizer],
        clipproj: TextProjector | None = None,
        image_encoder: ClipImageTokenEncoder | None = None,
        frozen_mode: str = "train",
        condition_on: str = "clip_voxels",
        prior_weight: float = 30.0,
        text_weight: float = 1.0,
        val_text_weight: float = 0.25,
        val_condition_divisor: float = 3.0,
        val_sample_steps: int = 20,
        val_sample_every_n_epochs: int = 1,
        val_seed: int = 0,
        **kwargs,
    ) -> None:
        if frozen_mode not in ("train", "eval"):
            raise ValueError(f"system.frozen_mode: expected 'train' or 'eval', found {frozen_mode!r}")
        if condition_on not in ("clip_voxels", "backbone"):
            raise ValueError(
                f"system.condition_on: expected 'clip_voxels' or 'backbone', found {condition_on!r}"
            )
        kwargs.setdefault("mixup_pct", 0.0)
        super().__init__(
            ridge=ridge,
            backbone=backbone,
            optimizer=optimizer,
            clipproj=clipproj,
            image_encoder=image_encoder,
            text_weight=text_weight,
            **kwargs,
        )
        self.diffusion_prior = diffusion_prior
        ridge.requires_grad_(False)
        backbone.requires_grad_(False)
        self._val_samples: dict[str, list[Tensor]] = {"samples": [], "targets": [], "index": []}
        self._val_samples_by: dict[int, dict[str, list[Tensor]]] = {}

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.hparams.frozen_mode == "eval":
            self.ridge.eval()
            self.backbone.eval()
        return self

    def trainable_modules(self) -> list[nn.Module]:
        return [self.diffusion_prior]

    def dry_run_forward(self, batch_size: int):
        """Frozen nets and the prior's training forward on zeros (memory plan, meta device)."""
        voxels = next(self.ridge.parameters()).shape[1]
        cond = self.encode_voxels(torch.zeros(batch_size, voxels))[1]
        return self.diffusion_prior(cond, torch.zeros_like(cond))

    def condition(self, voxels: Tensor, subject_index: int = 0) -> tuple[Tensor, Tensor]:
        """(prior condition, clip_voxels) from the frozen nets; NeuroClips conditions on clip_voxels."""
        with torch.no_grad():
            backbone_tokens, clip_voxels = self.encode_voxels(voxels, subject_index)
        cond = clip_voxels if self.hparams.condition_on == "clip_voxels" else backbone_tokens
        return cond, clip_voxels

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        hp = self.hparams
        parts = batch_parts(batch, len(self.ridge.linears))
        if len(parts) == 1:
            cond, clip_voxels = self.condition(batch["fmri"])
            targets = self.clip_targets(batch)
        else:  # several subjects: each through its adapter, one prior over the whole batch
            conds = [self.condition(part["fmri"], k) for k, part in parts]
            cond, clip_voxels = torch.cat([c for c, _ in conds]), torch.cat([v for _, v in conds])
            targets = torch.cat([self.clip_targets(part) for _, part in parts])
            if self.clipproj is not None:
                batch = {
                    "targets": {"caption_emb": torch.cat([p["targets"]["caption_emb"] for _, p in parts])}
                }
        loss_prior, prior_out = self.diffusion_prior(cond, targets)
        loss = hp.prior_weight * loss_prior
        with torch.no_grad():  # reference adds it to the loss, but no trainable weight sees it
            tau = self.softclip_tau()
            loss_clip = C.soft_clip_loss(
                self.gather(flat_normalize(clip_voxels)), self.gather(flat_normalize(targets)), tau
            )
        loss = loss + hp.clip_weight * loss_clip
        loss_text = self.text_loss(prior_out, batch)
        if loss_text is not None:
            loss = loss + hp.text_weight * loss_text
            self.log("train/loss_text", loss_text, sync_dist=True)
        self.log_dict(
            {
                "train/loss": loss,
                "train/loss_prior": loss_prior,
                "train/loss_clip": loss_clip,
                "train/tau": float(tau),
            },
            prog_bar=True,
            sync_dist=True,
        )
        return loss

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        hp = self.hparams
        backbone_tokens, clip_voxels = self.encode_voxels(batch["fmri"], dataloader_idx)
        cond = clip_voxels if hp.condition_on == "clip_voxels" else backbone_tokens
        targets = self.clip_targets(batch)
        # seeded timesteps, noise and dropout masks: the validation prior loss is comparable across epochs
        gen = torch.Generator(device=self.device).manual_seed(hp.val_seed + batch_idx)
        # reference quirk: the validation condition is divided by 3 (a MindEye2 leftover), only here
        loss_prior, prior_out = self.diffusion_prior(cond / hp.val_condition_divisor, targets, generator=gen)
        preds, targs = flat_normalize(clip_voxels), flat_normalize(targets)
        loss_clip = C.soft_clip_loss(preds, targs, hp.val_tau)
        loss = hp.prior_weight * loss_prior + hp.clip_weight * loss_clip
        loss_text = self.text_loss(prior_out, batch, gather=False)
        if loss_text is not None:
            loss = loss + hp.val_text_weight * loss_text
        self.log_val({"val/loss_text": loss_text}, dataloader_idx, len(preds))
        self.log_val(
            {"val/loss": loss, "val/loss_prior": loss_prior, "val/loss_clip": loss_clip},
            dataloader_idx,
            len(preds),
        )
        rows = self.val_rows(dataloader_idx)
        rows["preds"].append(preds.half())
        rows["targets"].append(targs.half())
        if "split_index" in batch:
            rows["index"].append(torch.as_tensor(batch["split_index"]).reshape(-1))
        if self.sample_this_epoch():
            samples = self.diffusion_prior.p_sample_loop(cond, timesteps=hp.val_sample_steps, generator=gen)
            bucket = (
                self._val_samples
                if not self.multi_subject
                else self._val_samples_by.setdefault(
                    dataloader_idx, {"samples": [], "targets": [], "index": []}
                )
            )
            bucket["samples"].append(flat_normalize(samples).half())
            bucket["targets"].append(targs.half())
            if "split_index" in batch:
                bucket["index"].append(torch.as_tensor(batch["split_index"]).reshape(-1))

    def sample_this_epoch(self) -> bool:
        every = self.hparams.val_sample_every_n_epochs
        return every > 0 and (self.current_epoch + 1) % every == 0

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.multi_subject:
            self.log_subject_metrics(self._val_samples_by, "val/prior_top1")
            return
        if not self._val_samples["samples"]:
            return
        rows, self._val_samples = self._val_samples, {"samples": [], "targets": [], "index": []}
        self.log_dict(self.retrieval_of(rows, "val/prior_top1"), sync_dist=False)
