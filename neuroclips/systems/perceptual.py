"""Stage `pr`: the Perceptual Reconstructor's training recipe (method.md §4.2-4.3).

Loss (objective `reference`): total_scale × (L1(predicted, VAE latents) + cont_weight × soft_cont(aux tokens,
ConvNeXt teacher, teacher on an augmented view; τ 0.2)). Objective `paper_eq1`: MAE + frame/fMRI InfoNCE.
Targets: cached `vae_latents` from the data file (`latent_source=cached`) or encoded online from the frames.
Optimizer: the injected partial (reference AdamW, weight decay 0.01 on every parameter); schedule OneCycle with
pct_start = 2 / epochs, final_div_factor 1000, over `trainer.estimated_stepping_batches`.
Validation decodes the predicted latents with the frozen VAE and logs `val/pixcorr` (MindEye PixCorr: per-frame
Pearson after a bilinear resize to 425, `neuroclips.metrics.pixcorr`) and `val/ssim` (`neuroclips.metrics.ssim`); the best checkpoint is chosen on `val/pixcorr`.

Reference quirks as options: `temporal_window` (`batch` = reference, `clip` = scale=tiny with a shuffled loader,
`train.pr.temporal_window` / `train.pr.shuffle`: pr_plateau.md), `mixup_pct` (reference 0; above 0
the reference crashes, here it mixes voxels and target latents BiMixCo-style), `log_train_pixcorr` (reference
decodes every training batch for a train PixCorr; off by default because it only observes).
The `batch` window assumes consecutive clips in a batch (unshuffled loader). Under DDP (`shard: contiguous`) each
rank's batch is a consecutive piece of the global batch, so the window spans that rank's B / W clips (attention
cannot cross processes): N processes equal one only with `temporal_window=clip` (or on one device).

DDP: the batch-wide soft contrastive term sees the global batch by default (`gather_contrastive=true`, a no-op on
one process): the aux tokens (with gradients) and the teacher tokens of every rank are gathered before the loss,
which is invariant to the row order, so N processes with global batch B compute the one-process term at batch B.
`gather_contrastive=false` scores each process's own clips (per-GPU, like a multi-GPU run of the reference).
Validation never gathers inside a step (validation shards may be uneven).

Several subjects (``subj=all``): each subject's part of the batch goes through its own Inception Extension and
ridge and the shared rest (its temporal window stays within the part: the subject's consecutive clips); the losses
see the whole batch. With the reference's unshuffled loader (``train.pr.shuffle=false``, which the ``batch`` window
needs) every subject's part holds the same clips of the movie; shuffled (scale=tiny) each part is its subject's
draw. Validation metrics per subject (``val/subj01/pixcorr``) and their mean (``val/pixcorr``, the monitor).
New subject: ``init_from_run`` loads an earlier pr run's shared nets (and the adapters of subjects it held); the
first ``adapter_epochs`` (phase ``adapter``) train only the Inception Extension and ridge (the new subject's), the
shared nets frozen, then (phase ``all``) everything.
"""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanMetric

from neuroclips.losses.contrastive import apply_mixco, draw_mixco, mixco_epochs
from neuroclips.losses.perceptual import paper_pr_loss, reference_pr_loss
from neuroclips.metrics.pixcorr import pixcorr
from neuroclips.metrics.ssim import ssim
from neuroclips.models.convnext_teacher import ConvNeXtTeacher, TeacherAugmentation
from neuroclips.models.frozen_vae import VaeLatentEncoder
from neuroclips.models.perceptual import PerceptualNet, validate_temporal_window
from neuroclips.systems.multi_subject import (
    SubjectSums,
    batch_parts,
    in_adapter_phase,
    per_subject_and_mean,
    subject_names,
)
from neuroclips.systems.schedules import one_cycle, reference_pct_start
from neuroclips.utils.images import quantize

OBJECTIVES = ("reference", "paper_eq1")
LATENT_SOURCES = ("cached", "online")


class PerceptualReconstructor(pl.LightningModule):
    frozen_prefixes = ("vae.", "teacher.")

    def __init__(
        self,
        *,
        net: PerceptualNet,
        vae: VaeLatentEncoder,
        optimizer: Callable,
        teacher: ConvNeXtTeacher | None = None,
        teacher_augmentation: TeacherAugmentation | None = None,
        temporal_window: str | int = "batch",
        latent_source: str = "cached",
        objective: str = "reference",
        l1_weight: float = 1.0,
        cont_weight: float = 0.1,
        cont_temperature: float = 0.2,
        total_scale: float = 0.5,
        infonce_weight: float = 1.0,
        infonce_temperature: float = 0.1,
        mixup_pct: float = 0.0,
        mixco_beta: float = 0.15,
        mixco_select_prob: float = 0.5,
        lr_scheduler: str = "onecycle",
        pct_start_epochs: float = 2.0,
        final_div_factor: float = 1000.0,
        div_factor: float = 25.0,
        ssim_variant: str = "rgb255",
        log_train_pixcorr: bool = False,
        gather_contrastive: bool = True,
        subjects: int | str | list[int] | None = None,
        init_from_run: str | None = None,
        adapter_epochs: int = 0,
    ) -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"system.objective: expected one of {OBJECTIVES}, found {objective!r}.")
        if latent_source not in LATENT_SOURCES:
            raise ValueError(
                f"system.latent_source: expected one of {LATENT_SOURCES}, found {latent_source!r}."
            )
        if lr_scheduler not in ("onecycle", "none"):
            raise ValueError(f"system.lr_scheduler: expected 'onecycle' or 'none', found {lr_scheduler!r}.")
        validate_temporal_window(temporal_window)
        self.save_hyperparameters(ignore=["net", "vae", "teacher", "teacher_augmentation", "optimizer"])
        self.net, self.vae, self.teacher = net, vae, teacher
        self.teacher_augmentation = teacher_augmentation or TeacherAugmentation()
        self.optimizer_factory = optimizer
        self.uses_teacher = objective == "reference" and cont_weight > 0
        if self.uses_teacher and teacher is None:
            raise ValueError(
                "system.teacher: the reference objective with cont_weight > 0 needs a ConvNeXt teacher."
            )
        self.val_pixcorr, self.val_ssim, self.val_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.n_subjects = len(net.ridge.linears)
        self._val_sums = SubjectSums()  # several subjects: per-subject sums, logged at the epoch's end
        self.new_adapters = self.warm_start(subjects, init_from_run, adapter_epochs)

    def warm_start(self, subjects, init_from_run: str | None, adapter_epochs: int) -> list[int]:
        """Adapter indices the warm start did not find (fresh); loads ``init_from_run`` if given."""
        from neuroclips.errors import ConfigError

        if not init_from_run:
            if adapter_epochs:
                raise ConfigError(
                    f"adapt.adapter_epochs={adapter_epochs}: expected init.from_run (the run whose shared "
                    f"nets stay frozen in the adapter phase), found none."
                )
            return list(range(self.n_subjects))
        from neuroclips.checkpoints import warm_start_from_run
        from neuroclips.subjects import as_ids
        from neuroclips.utils.weights import is_meta

        ids = as_ids(subjects) if subjects is not None else list(range(1, self.n_subjects + 1))
        if is_meta(self.net):
            return list(range(self.n_subjects))
        new = warm_start_from_run(self, init_from_run, ids, expected_stage="pr", prefixes=("net.",))
        return [ids.index(s) for s in new]

    def on_train_epoch_start(self) -> None:
        """Adaptation phases: ``adapter`` (shared nets frozen; each subject's Inception Extension and ridge train),
        then ``all``."""
        if not self.hparams.adapter_epochs:
            return
        self.net.requires_grad_(not in_adapter_phase(self.current_epoch, self.hparams.adapter_epochs))
        self.net.inception.requires_grad_(True)
        self.net.ridge.requires_grad_(True)

    # ------------------------------------------------------------------------------------------- pieces
    def _frames(self, batch: dict) -> Tensor:
        if "frames" not in batch:
            raise KeyError(
                "stage pr: batches carry no 'frames'; set datamodule.load_frames=true in conf/stage/pr.yaml."
            )
        return batch["frames"]

    def target_latents(self, batch: dict) -> Tensor:
        """(B, F, C, h, w) SD-VAE latents: cached in the data file or encoded now from the frames."""
        if self.hparams.latent_source == "cached":
            targets = batch.get("targets") or {}
            if "vae_latents" not in targets:
                raise KeyError(
                    "stage pr: latent_source=cached but batches carry no targets['vae_latents']; add vae_latents to "
                    "datamodule.targets and run `stage=targets`, or set system.latent_source=online."
                )
            latents = targets["vae_latents"]
        else:
            frames = self._frames(batch)
            latents = self.vae.encode(frames.flatten(0, 1)).reshape(
                *frames.shape[:2], *self.vae.output_shape()
            )
        expected = (
            self.net.frames_per_clip,
            self.vae.output_shape()[0],
            self.net.latent_size,
            self.net.latent_size,
        )
        if tuple(latents.shape[1:]) != expected:
            raise ValueError(
                f"stage pr: target latents have shape {tuple(latents.shape[1:])} per clip, the net predicts {expected}; "
                f"scale.pr.net (low_level_size × 2^(decoder blocks−1)) must equal the VAE latent size."
            )
        return latents.float()

    def teacher_tokens(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        flat = frames.flatten(0, 1)
        return self.teacher(flat), self.teacher(self.teacher_augmentation(flat))

    def gather_tokens(self, tokens: Tensor | None, grads: bool) -> Tensor | None:
        """All ranks' token rows, rank after rank (``gather_contrastive`` under DDP), else ``tokens`` unchanged."""
        trainer = self._trainer
        if (
            tokens is None
            or not self.hparams.gather_contrastive
            or trainer is None
            or trainer.world_size == 1
        ):
            return tokens
        return self.all_gather(tokens, sync_grads=grads).flatten(0, 1)

    def compute_losses(
        self, outputs: dict[str, Tensor], targets: Tensor, frames: Tensor | None, gather: bool = False
    ) -> dict[str, Tensor]:
        """The objective's parts; ``gather`` (training): the soft contrastive term over the global batch."""
        h = self.hparams
        if h.objective == "paper_eq1":
            return paper_pr_loss(
                outputs["latents"],
                targets,
                infonce_weight=h.infonce_weight,
                infonce_temperature=h.infonce_temperature,
            )
        teacher = teacher_aug = None
        if self.uses_teacher:
            teacher, teacher_aug = self.teacher_tokens(frames)
            if teacher.shape[-2:] != outputs["aux_tokens"].shape[-2:]:
                raise ValueError(
                    f"stage pr: teacher tokens {tuple(teacher.shape[-2:])} and student tokens "
                    f"{tuple(outputs['aux_tokens'].shape[-2:])} differ; set scale.pr.teacher.input_size to "
                    f"32 × low_level_size and projector_dim to aux_dim."
                )
        student = outputs["aux_tokens"]
        if gather and self.uses_teacher:
            student = self.gather_tokens(student, grads=True)
            teacher, teacher_aug = (
                self.gather_tokens(teacher, grads=False),
                self.gather_tokens(teacher_aug, grads=False),
            )
        return reference_pr_loss(
            outputs["latents"],
            targets,
            student,
            teacher,
            teacher_aug,
            l1_weight=h.l1_weight,
            cont_weight=h.cont_weight,
            cont_temperature=h.cont_temperature,
            total_scale=h.total_scale,
        )

    def decode_frames(self, latents: Tensor) -> Tensor:
        """(B, F, C, h, w) latents -> (B, F, 3, H, W) frames in [0, 1]."""
        images = self.vae.decode(latents.flatten(0, 1).float())
        return images.reshape(*latents.shape[:2], *images.shape[1:])

    # ------------------------------------------------------------------------------------------- steps
    def dry_run_forward(self, batch_size: int):
        """The net's training forward on zeros (memory plan's activation estimate, meta device)."""
        voxels = next(self.net.inception.parameters()).shape[1]
        return self.net(torch.zeros(batch_size, voxels), self.hparams.temporal_window)

    def subject_step(self, batch: dict, subject_index: int) -> tuple[dict, Tensor, Tensor | None]:
        """Outputs, target latents and frames of one subject's part of a training batch."""
        voxels = batch["fmri"]
        targets = self.target_latents(batch)
        frames = batch.get("frames")
        if self.uses_teacher:
            frames = self._frames(batch)
        if self.current_epoch < mixco_epochs(self.hparams.mixup_pct, self.trainer.max_epochs or 1):
            # one BiMixCo draw (the SR's, from the CPU generator) mixes the voxels and their target latents alike
            draw = draw_mixco(
                len(voxels), self.hparams.mixco_beta, self.hparams.mixco_select_prob, voxels.device
            )
            voxels, targets = apply_mixco(voxels, draw), apply_mixco(targets, draw)
        return self.net(voxels, self.hparams.temporal_window, subject_index), targets, frames

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        steps = [self.subject_step(part, k) for k, part in batch_parts(batch, self.n_subjects)]
        if len(steps) == 1:
            outputs, targets, frames = steps[0]
        else:  # several subjects: one loss over the whole batch
            outputs = {key: torch.cat([o[key] for o, _, _ in steps]) for key in steps[0][0]}
            targets = torch.cat([t for _, t, _ in steps])
            frames = None if steps[0][2] is None else torch.cat([f for _, _, f in steps])
        losses = self.compute_losses(outputs, targets, frames, gather=True)
        batch_size = targets.shape[0]
        self.log_dict(
            {f"train/{k}": v for k, v in losses.items()},
            prog_bar=False,
            batch_size=batch_size,
            on_step=True,
            on_epoch=True,
            sync_dist=True,
        )
        if self.hparams.log_train_pixcorr and frames is not None:
            with torch.no_grad():
                decoded = self.decode_frames(outputs["latents"].detach())
                train_pixcorr = pixcorr(
                    quantize(decoded.flatten(0, 1)), quantize(frames.flatten(0, 1))
                ).mean()
            self.log(
                "train/pixcorr", train_pixcorr.float(), batch_size=batch_size, on_epoch=True, sync_dist=True
            )
        return losses["loss"]

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        frames = self._frames(batch)
        targets = self.target_latents(batch)
        outputs = self.net(batch["fmri"], self.hparams.temporal_window, dataloader_idx)
        losses = self.compute_losses(outputs, targets, frames)
        decoded = self.decode_frames(outputs["latents"]).flatten(0, 1)
        truth = frames.flatten(0, 1)
        if decoded.shape[-2:] != truth.shape[-2:]:
            decoded = F.interpolate(decoded, size=truth.shape[-2:], mode="bilinear", antialias=True)
        decoded, truth = quantize(decoded), quantize(truth)
        pixcorr_values = pixcorr(decoded, truth).float().to(self.device)
        ssim_values = ssim(decoded, truth, variant=self.hparams.ssim_variant).float().to(self.device)
        if self.n_subjects > 1:
            self._val_sums.add(
                dataloader_idx,
                {"val/pixcorr": pixcorr_values.mean(), "val/ssim": ssim_values.mean()},
                len(pixcorr_values),
            )
            self._val_sums.add(dataloader_idx, {"val/loss": losses["loss"].detach()}, frames.shape[0])
            return
        self.val_pixcorr.update(pixcorr_values)
        self.val_ssim.update(ssim_values)
        self.val_loss.update(losses["loss"].detach(), weight=frames.shape[0])
        self.log("val/pixcorr", self.val_pixcorr, on_epoch=True, prog_bar=True)
        self.log("val/ssim", self.val_ssim, on_epoch=True)
        self.log("val/loss", self.val_loss, on_epoch=True)

    def on_validation_epoch_end(self) -> None:
        if self.n_subjects > 1:
            means = self._val_sums.means()
            if means:
                names = subject_names(self.trainer, self.n_subjects)
                self.log_dict(per_subject_and_mean(means, names), prog_bar=False, sync_dist=True)

    # ------------------------------------------------------------------------------------------- optimizer
    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.net.parameters())
        if self.hparams.lr_scheduler == "none":
            return optimizer
        scheduler = one_cycle(
            optimizer,
            int(self.trainer.estimated_stepping_batches),
            reference_pct_start(self.hparams.pct_start_epochs, self.trainer.max_epochs or 1),
            self.hparams.div_factor,
            self.hparams.final_div_factor,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
