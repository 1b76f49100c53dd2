"""Stage ``sr``: train ridge + backbone to predict CLIP image tokens of the keyframe (method.md §3.2-§3.4).

Loss: BiMixCo (voxels mixed before the ridge, tau 0.006) for the first ``mixup_pct`` of the epochs, SoftCLIP with a
cosine tau schedule afterwards, plus ``text_weight`` x InfoNCE(text_projector(clip_voxels), caption embedding).
Validation: SoftCLIP at ``val_tau`` + text term, and forward/backward top-1 retrieval among ``retrieval_k`` clips.

Under DDP (``gather_negatives=true``, the default; a no-op on one process) the training contrastive terms see the
global batch: every rank's embeddings are gathered with gradients, so N processes with global batch B train the
one-process experiment with batch B. ``gather_negatives=false`` scores each process's own clips (per-GPU
negatives). Validation losses are per process and per batch (no collective in a step: validation shards may be
uneven); retrieval gathers all validation rows and puts them back in the one-process order before chunking.

Several subjects (``subj=all``, neuroclips.systems.multi_subject): one ridge adapter per subject, one shared
backbone; each training batch holds every subject's clips (BiMixCo mixes within a subject), their ridge outputs are
concatenated and the contrastive terms see the whole batch. Validation metrics per subject and their mean.
New-subject adaptation: ``init_from_run`` loads an earlier run's shared nets and the adapters of the subjects it
held; for the first ``adapter_epochs`` (phase ``adapter``) only the adapters train (the new subject's, in the usual
case of one subject), the shared backbone frozen, then (phase ``all``) everything, as MindEye2's fine-tuning does.
"""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroclips.losses import contrastive as C
from neuroclips.metrics.retrieval import retrieval_top1
from neuroclips.models.frozen_clip import ClipImageTokenEncoder
from neuroclips.models.semantic import RidgeAdapters, SemanticBackbone
from neuroclips.models.text_projector import TextProjector
from neuroclips.systems.multi_subject import (
    SubjectSums,
    batch_parts,
    concat_draws,
    in_adapter_phase,
    per_subject_and_mean,
    subject_names,
)
from neuroclips.systems.schedules import one_cycle, reference_pct_start


def cached_target_names(online: bool) -> list[str]:
    """Datasets the SR stages read from ``/targets`` (config glue for ``clip_tokens.online``)."""
    return ["caption_emb"] if online else ["clip_tokens", "caption_emb"]


def flat_normalize(x: Tensor) -> Tensor:
    """All tokens as one vector per sample, L2-normalised (every contrastive term of the reference does this)."""
    return F.normalize(x.flatten(1), dim=-1)


NET_ARGUMENTS = ("ridge", "backbone", "clipproj", "image_encoder", "diffusion_prior", "optimizer")


class SemanticReconstructor(pl.LightningModule):
    frozen_prefixes: tuple[str, ...] = ("image_encoder.",)

    def __init__(
        self,
        ridge: RidgeAdapters,
        backbone: SemanticBackbone,
        optimizer: Callable[..., torch.optim.Optimizer],
        clipproj: TextProjector | None = None,
        image_encoder: ClipImageTokenEncoder | None = None,
        mixup_pct: float = 1.0,
        mixco_beta: float = 0.15,
        mixco_select_prob: float = 0.5,
        mixco_tau: float = 0.006,
        mixco_fixed_point: str = "overwrite",
        softclip_tau_start: float = 0.004,
        softclip_tau_end: float = 0.0075,
        val_tau: float = 0.006,
        clip_weight: float = 1.0,
        text_tau: float = 0.1,
        text_weight: float = 0.25,
        gather_negatives: bool = True,
        decay_biases_and_norms: bool = True,
        pct_start: float | None = None,
        final_div_factor: float = 1000.0,
        div_factor: float = 25.0,
        retrieval_k: int = 300,
        subjects: int | str | list[int] | None = None,
        init_from_run: str | None = None,
        adapter_epochs: int = 0,
    ) -> None:
        super().__init__()
        # collects the arguments of subclass constructors too (Lightning walks the __init__ frames)
        self.save_hyperparameters(ignore=list(NET_ARGUMENTS))
        self.ridge, self.backbone = ridge, backbone
        self.clipproj = clipproj
        if clipproj is not None:
            clipproj.requires_grad_(False)  # frozen in the reference whenever the text loss is on
        self.image_encoder = image_encoder  # online mode: encode keyframes instead of reading cached targets
        self.optimizer_factory = optimizer
        self._val: dict[str, list[Tensor]] = {"preds": [], "targets": [], "index": []}
        self._val_by: dict[int, dict[str, list[Tensor]]] = {}  # several subjects: rows per adapter
        self._val_sums = SubjectSums()
        self.new_adapters = self.warm_start(subjects, init_from_run, adapter_epochs)

    def warm_start(self, subjects, init_from_run: str | None, adapter_epochs: int) -> list[int]:
        """Adapter indices the warm start did not find (fresh); loads ``init_from_run`` if given."""
        from neuroclips.errors import ConfigError

        n = len(self.ridge.linears)
        if not init_from_run:
            if adapter_epochs:
                raise ConfigError(
                    f"adapt.adapter_epochs={adapter_epochs}: expected init.from_run (the run whose shared "
                    f"nets stay frozen in the adapter phase), found none."
                )
            return list(range(n))
        from neuroclips.checkpoints import warm_start_from_run
        from neuroclips.subjects import as_ids
        from neuroclips.utils.weights import is_meta

        ids = as_ids(subjects) if subjects is not None else list(range(1, n + 1))
        if len(ids) != n:
            raise ConfigError(f"system.subjects: expected {n} subjects (one per ridge adapter), found {ids}.")
        if is_meta(self.backbone):
            return list(range(n))
        new = warm_start_from_run(
            self,
            init_from_run,
            ids,
            expected_stage=["sr", "sr_prior"],
            prefixes=("ridge.", "backbone.", "clipproj."),
        )
        return [ids.index(s) for s in new]

    # ---- pieces -------------------------------------------------------------------------------------------
    def clip_targets(self, batch: dict) -> Tensor:
        if self.image_encoder is not None:
            return self.image_encoder.encode(batch["keyframe"])
        return batch["targets"]["clip_tokens"]

    def encode_voxels(self, voxels: Tensor, subject_index: int = 0) -> tuple[Tensor, Tensor]:
        """fMRI (B, V) of one subject (adapter ``subject_index``) -> (backbone tokens, clip_voxels), each (B, T, D)."""
        return self.backbone(self.ridge(voxels, subject_index))

    def dry_run_forward(self, batch_size: int):
        """The training forward on zeros, for the memory plan's activation estimate (runs on the meta device)."""
        voxels = next(self.ridge.parameters()).shape[1]
        return self.encode_voxels(torch.zeros(batch_size, voxels))

    def on_train_epoch_start(self) -> None:
        """Adaptation phases: ``adapter`` (the shared backbone frozen, the subjects' adapters train), then ``all``."""
        epochs = int(self.hparams.get("adapter_epochs") or 0)
        if epochs:
            self.backbone.requires_grad_(not in_adapter_phase(self.current_epoch, epochs))

    def gather(self, x: Tensor) -> Tensor:
        """Concatenate ``x`` over ranks with gradients (``gather_negatives``), else return it unchanged."""
        if not self.hparams.gather_negatives or self.trainer is None or self.trainer.world_size == 1:
            return x
        return self.all_gather(x, sync_grads=True).flatten(0, 1)

    def gather_rows(self, x: Tensor) -> Tensor:
        """All ranks' rows of ``x`` (no gradients); ranks may hold different numbers of rows (unpadded val shards)."""
        if self.trainer is None or self.trainer.world_size == 1:
            return x
        sizes = self.all_gather(torch.tensor(len(x), device=x.device)).flatten().tolist()
        padded = torch.zeros((max(sizes), *x.shape[1:]), dtype=x.dtype, device=x.device)
        padded[: len(x)] = x
        gathered = self.all_gather(padded)
        return torch.cat([gathered[r, :n] for r, n in enumerate(sizes)])

    def gather_in_order(self, parts: dict[str, list[Tensor]]) -> dict[str, Tensor]:
        """Concatenate each list of validation rows, gather them over ranks and sort the rows by ``index`` (the
        split row of each clip), so that retrieval chunks hold the clips one process would put in them."""
        index = torch.cat(parts["index"]) if parts.get("index") else None
        out = {k: self.gather_rows(torch.cat(v)) for k, v in parts.items() if k != "index"}
        if index is not None and self.trainer.world_size > 1:
            order = torch.argsort(self.gather_rows(index.to(self.device)), stable=True)
            out = {k: v[order] for k, v in out.items()}
        return out

    def gather_mixco(self, draw: C.MixCoDraw) -> C.MixCoDraw:
        if not self.hparams.gather_negatives or self.trainer is None or self.trainer.world_size == 1:
            return draw
        b = len(draw.perm)
        perms = self.all_gather(draw.perm)  # (world, B): offset each rank's permutation into the global batch
        offsets = torch.arange(perms.shape[0], device=perms.device)[:, None] * b
        return C.MixCoDraw(
            (perms + offsets).flatten(),
            self.all_gather(draw.betas).flatten(),
            self.all_gather(draw.select).flatten(),
        )

    def text_loss(self, tokens: Tensor, batch: dict, gather: bool = True) -> Tensor | None:
        """InfoNCE(text_projector(tokens), caption embedding); over the global batch when ``gather`` (training)."""
        if self.clipproj is None or self.hparams.text_weight == 0:
            return None
        pred = flat_normalize(self.clipproj(tokens))
        target = flat_normalize(batch["targets"]["caption_emb"])
        if gather:
            pred, target = self.gather(pred), self.gather(target)
        return C.info_nce(pred, target, self.hparams.text_tau)

    def keep_index(self, batch: dict) -> None:
        if "split_index" in batch:
            self._val["index"].append(torch.as_tensor(batch["split_index"]).reshape(-1))

    def in_mixco_phase(self) -> bool:
        return self.current_epoch < C.mixco_epochs(self.hparams.mixup_pct, self.trainer.max_epochs)

    def softclip_tau(self) -> float:
        hp = self.hparams
        return C.softclip_temperature(
            self.current_epoch,
            self.trainer.max_epochs,
            hp.mixup_pct,
            hp.softclip_tau_start,
            hp.softclip_tau_end,
        )

    # ---- training -----------------------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        hp = self.hparams
        parts = batch_parts(batch, len(self.ridge.linears))
        adapted, target_parts, draws = [], [], []
        for (
            k,
            part,
        ) in parts:  # one subject: the reference path; several: ridge per subject, one backbone pass
            voxels = part["fmri"]
            target_parts.append(self.clip_targets(part))
            if self.in_mixco_phase():
                draws.append(
                    C.draw_mixco(len(voxels), hp.mixco_beta, hp.mixco_select_prob, device=voxels.device)
                )
                voxels = C.apply_mixco(voxels, draws[-1])
            adapted.append(self.ridge(voxels, k))
        _, clip_voxels = self.backbone(adapted[0] if len(adapted) == 1 else torch.cat(adapted))
        targets = target_parts[0] if len(parts) == 1 else torch.cat(target_parts)
        draw = concat_draws(draws) if draws else None
        if len(parts) > 1 and self.clipproj is not None:
            batch = {"targets": {"caption_emb": torch.cat([p["targets"]["caption_emb"] for _, p in parts])}}
        preds, targs = self.gather(flat_normalize(clip_voxels)), self.gather(flat_normalize(targets))
        if draw is not None:
            soft = C.mixco_soft_labels(self.gather_mixco(draw), hp.mixco_fixed_point)
            loss_clip, tau = C.mixco_nce(preds, targs, soft, hp.mixco_tau), hp.mixco_tau
        else:
            tau = self.softclip_tau()
            loss_clip = C.soft_clip_loss(preds, targs, tau)
        loss = hp.clip_weight * loss_clip
        loss_text = self.text_loss(clip_voxels, batch)
        if loss_text is not None:
            loss = loss + hp.text_weight * loss_text
            self.log("train/loss_text", loss_text, sync_dist=True)
        self.log_dict(
            {"train/loss": loss, "train/loss_clip": loss_clip, "train/tau": float(tau)},
            prog_bar=True,
            sync_dist=True,
        )
        return loss

    # ---- validation ---------------------------------------------------------------------------------------
    @property
    def multi_subject(self) -> bool:
        return len(self.ridge.linears) > 1

    def log_val(self, values: dict[str, Tensor | None], dataloader_idx: int, batch_size: int) -> None:
        """One subject: log as the reference does; several: summed per subject, logged at the epoch's end."""
        values = {k: v for k, v in values.items() if v is not None}
        if not self.multi_subject:
            self.log_dict(values, sync_dist=True)
        else:
            self._val_sums.add(dataloader_idx, values, batch_size)

    def val_rows(self, dataloader_idx: int) -> dict[str, list[Tensor]]:
        """The validation rows kept for retrieval: one bucket, or one per subject."""
        if not self.multi_subject:
            return self._val
        return self._val_by.setdefault(dataloader_idx, {"preds": [], "targets": [], "index": []})

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        hp = self.hparams
        _, clip_voxels = self.encode_voxels(batch["fmri"], dataloader_idx)
        preds, targs = flat_normalize(clip_voxels), flat_normalize(self.clip_targets(batch))
        loss_clip = C.soft_clip_loss(preds, targs, hp.val_tau)
        loss = hp.clip_weight * loss_clip
        loss_text = self.text_loss(clip_voxels, batch, gather=False)
        if loss_text is not None:
            loss = loss + hp.text_weight * loss_text
        self.log_val({"val/loss_text": loss_text}, dataloader_idx, len(preds))
        self.log_val({"val/loss": loss, "val/loss_clip": loss_clip}, dataloader_idx, len(preds))
        rows = self.val_rows(dataloader_idx)
        rows["preds"].append(preds.half())  # half: K x 426k floats per chunk at paper scale
        rows["targets"].append(targs.half())
        if "split_index" in batch:
            rows["index"].append(torch.as_tensor(batch["split_index"]).reshape(-1))

    def retrieval_of(self, rows: dict[str, list[Tensor]], prefix: str = "val/top1") -> dict[str, float]:
        gathered = self.gather_in_order(rows)
        # consecutive chunks of retrieval_k clips, only full ones (one chunk of all when fewer), as the reference's
        # batches of 300; the same metric as the evaluation's (neuroclips.metrics.retrieval)
        res = retrieval_top1(
            gathered["preds" if "preds" in gathered else "samples"],
            gathered["targets"],
            self.hparams.retrieval_k,
        )
        return {f"{prefix}_fwd": res.forward, f"{prefix}_bwd": res.backward}

    def on_validation_epoch_end(self) -> None:
        if not self.multi_subject:
            if not self._val["preds"]:
                return
            rows, self._val = self._val, {"preds": [], "targets": [], "index": []}
            self.log_dict(self.retrieval_of(rows), prog_bar=True, sync_dist=False, rank_zero_only=False)
            return
        self.log_subject_metrics(self._val_by, "val/top1")

    def log_subject_metrics(self, buckets: dict[int, dict[str, list[Tensor]]], prefix: str) -> None:
        """Several subjects: per-subject retrieval and mean losses, and their means over subjects."""
        values = self._val_sums.means() if prefix == "val/top1" else {}
        for k, rows in sorted(buckets.items()):
            if rows.get("preds") or rows.get("samples"):
                values.setdefault(k, {}).update(self.retrieval_of(rows, prefix))
        buckets.clear()
        if values:
            out = per_subject_and_mean(values, subject_names(self.trainer, len(self.ridge.linears)))
            self.log_dict(out, sync_dist=True, rank_zero_only=False)

    # ---- optimisation -------------------------------------------------------------------------------------
    def trainable_modules(self) -> list[nn.Module]:
        return [self.ridge, self.backbone]

    def configure_optimizers(self):
        hp = self.hparams
        if hp.get(
            "adapter_epochs"
        ):  # the adapter phase freezes by requires_grad: the optimizer holds everything
            for m in self.trainable_modules():
                m.requires_grad_(True)
        params = [
            (n, p) for m in self.trainable_modules() for n, p in m.named_parameters() if p.requires_grad
        ]
        if hp.decay_biases_and_norms:  # reference: weight decay on every parameter
            groups = [{"params": [p for _, p in params]}]
        else:  # MindEye2: no decay on biases and norm weights (every parameter with fewer than 2 dims)
            groups = [
                {"params": [p for _, p in params if p.dim() >= 2]},
                {"params": [p for _, p in params if p.dim() < 2], "weight_decay": 0.0},
            ]
        optimizer = self.optimizer_factory(groups)
        pct = hp.pct_start if hp.pct_start is not None else reference_pct_start(2.0, self.trainer.max_epochs)
        scheduler = one_cycle(
            optimizer, int(self.trainer.estimated_stepping_batches), pct, hp.div_factor, hp.final_div_factor
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
