"""Score one set of reconstructions against ground truth under every configured protocol.

Aggregation follows the published runners (evaluation.md 3.9-3.10):

* frame-level metrics (N-way, SSIM, PSNR ``skimage``, PixCorr) are computed per frame position: mean over clips
  and std over clips per position, then both averaged over the positions;
* N-way: the +- is the mean binomial std (MinD-Video); video-level N-way is per clip;
* PSNR ``mind_animator``: per-clip mean over frames, then mean and std over clips (Mind-Animator ``PSNR.py``);
* CLIP-pcc ``adjacent``: mean and std over all adjacent pairs of all clips (NEURONS); ``all_pairs``: over clips.

Each result carries a label that names its protocol, model and frame selection, so every number says how it was made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from neuroclips.metrics.clip_pcc import clip_pcc_per_clip, clip_pcc_score
from neuroclips.metrics.nway import NWAY_PROTOCOLS, nway_topk, nway_topk_frames
from neuroclips.metrics.pixcorr import pixcorr
from neuroclips.metrics.psnr import psnr
from neuroclips.metrics.ssim import ssim


@dataclass
class NWaySettings:
    protocols: list[str] = field(default_factory=lambda: ["mindvideo", "strict"])
    n_ways: list[int] = field(default_factory=lambda: [2, 50])
    top_k: int = 1
    num_trials: int = 100
    sampler: str = "reference"
    seed: int = 0


@dataclass
class EvalModels:
    """Frozen models and the names printed next to their numbers."""

    frame_classifier: nn.Module | None = None
    video_classifier: nn.Module | None = None
    clip_embedders: dict[str, nn.Module] = field(default_factory=dict)  # CLIP-pcc variant -> embedder
    names: dict[str, str] = field(
        default_factory=dict
    )  # 'frame_classifier' | 'video_classifier' | variant -> label


def entry(values_mean: float, std: float, n: int, label: str, **extra) -> dict:
    return {"value": float(values_mean), "std": float(std), "n": int(n), "label": label, **extra}


@torch.no_grad()
def run_batched(model: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    out = [model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, x.shape[0], batch_size)]
    return torch.cat(out) if out else torch.zeros(0)


class Scorer:
    """Scores (N, F, 3, H, W) uint8 clips (or (N, 3, H, W) images) against ground truth of the same shape."""

    def __init__(
        self,
        models: EvalModels,
        nway: NWaySettings,
        ssim_variants: list[str],
        psnr_variants: list[str],
        clip_pcc_variants: list[str],
        with_pixcorr: bool = True,
        batch_size: int = 32,
        device: torch.device | str = "cpu",
        frame_selection: str = "",
    ):
        self.models, self.nway = models, nway
        self.ssim_variants, self.psnr_variants = list(ssim_variants), list(psnr_variants)
        self.clip_pcc_variants, self.with_pixcorr = list(clip_pcc_variants), with_pixcorr
        self.batch_size, self.device = batch_size, torch.device(device)
        self.frame_selection = frame_selection
        self._gt_cache: dict[tuple, torch.Tensor] = {}

    # -------------------------------------------------------------------------------------------- public
    def score(
        self, gt: torch.Tensor, recon: torch.Tensor, cache_key: tuple | None = None
    ) -> tuple[dict, dict]:
        """(metrics, per_clip): metrics[name] = entry(...); per_clip[name] = float64 (N,) per-clip values."""
        if gt.shape != recon.shape:
            raise ValueError(
                f"evaluation: ground truth {tuple(gt.shape)} and reconstruction {tuple(recon.shape)} differ in shape."
            )
        clips = gt if gt.ndim == 5 else gt.unsqueeze(1)
        preds = recon if recon.ndim == 5 else recon.unsqueeze(1)
        metrics: dict[str, dict] = {}
        per_clip: dict[str, np.ndarray] = {}
        self._pixel_metrics(clips, preds, metrics, per_clip)
        if self.models.frame_classifier is not None:
            self._frame_nway(clips, preds, metrics, per_clip, cache_key)
        if gt.ndim == 5 and self.models.video_classifier is not None:
            self._video_nway(clips, preds, metrics, per_clip, cache_key)
        if gt.ndim == 5 and preds.shape[1] > 1:
            self._clip_pcc(preds, metrics, per_clip)
        return metrics, per_clip

    # -------------------------------------------------------------------------------------------- parts
    def _positionwise(
        self, values: np.ndarray, name: str, label: str, metrics: dict, per_clip: dict, **extra
    ) -> None:
        """values (N, F): per-position mean and std over clips, averaged over positions."""
        with np.errstate(invalid="ignore"):  # PSNR of identical frames is +inf (as scikit-image): std is nan
            metrics[name] = entry(
                values.mean(0).mean(), values.std(0).mean(), values.shape[0], label, **extra
            )
        per_clip[name] = values.mean(1)

    def _pixel_metrics(self, clips, preds, metrics, per_clip) -> None:
        n, f = clips.shape[:2]
        flat_gt, flat_pred = clips.flatten(0, 1), preds.flatten(0, 1)
        sel = self.frame_selection
        for v in self.ssim_variants:
            vals = ssim(flat_pred, flat_gt, variant=v, device=self.device).numpy().reshape(n, f)
            self._positionwise(
                vals, f"ssim_{v}", f"SSIM {v}, per frame position, {sel}", metrics, per_clip, variant=v
            )
        for v in self.psnr_variants:
            vals = psnr(flat_pred, flat_gt, variant=v, device=self.device).numpy().reshape(n, f)
            if v == "mind_animator":  # per clip first, then over clips
                clip_means = vals.mean(1)
                metrics[f"psnr_{v}"] = entry(
                    clip_means.mean(),
                    clip_means.std(),
                    n,
                    f"PSNR {v} (20 log10(255/sqrt(MSE)), per-clip mean), {sel}",
                    variant=v,
                )
                per_clip[f"psnr_{v}"] = clip_means
            else:
                self._positionwise(
                    vals,
                    f"psnr_{v}",
                    f"PSNR {v} (data range 255), per frame position, {sel}",
                    metrics,
                    per_clip,
                    variant=v,
                )
        if self.with_pixcorr:
            vals = pixcorr(flat_pred, flat_gt, device=self.device).numpy().reshape(n, f)
            self._positionwise(
                vals, "pixcorr", f"PixCorr (Pearson, bilinear 425x425), {sel}", metrics, per_clip
            )

    def _logits(self, model: nn.Module, x: torch.Tensor, key: tuple | None) -> torch.Tensor:
        if key is not None and key in self._gt_cache:
            return self._gt_cache[key]
        out = run_batched(model, x, self.batch_size, self.device)
        if key is not None:
            self._gt_cache[key] = out
        return out

    def _nway_label(self, level: str, n_way: int, protocol: str, model: str) -> str:
        s = self.nway
        return (
            f"{level} {n_way}-way top-{s.top_k}, protocol {protocol} ({NWAY_PROTOCOLS[protocol]} GT class{'es' if NWAY_PROTOCOLS[protocol] > 1 else ''}), "
            f"{s.num_trials} trials, seed {s.seed}, sampler {s.sampler}, {model}, {self.frame_selection}"
        )

    def _frame_nway(self, clips, preds, metrics, per_clip, cache_key) -> None:
        n, f = clips.shape[:2]
        model = self.models.frame_classifier
        gt_logits = self._logits(
            model, clips.flatten(0, 1), None if cache_key is None else (*cache_key, "frame")
        ).view(n, f, -1)
        pred_logits = run_batched(model, preds.flatten(0, 1), self.batch_size, self.device).view(n, f, -1)
        s = self.nway
        for protocol in s.protocols:
            for n_way in s.n_ways:
                value, std, acc = nway_topk_frames(
                    gt_logits, pred_logits, n_way, s.top_k, s.num_trials, protocol, s.sampler, s.seed
                )
                name = f"frame_{n_way}way_{protocol}"
                label = self._nway_label(
                    "frame-level", n_way, protocol, self.models.names.get("frame_classifier", "ViT")
                )
                metrics[name] = entry(value, std, n, label, protocol=protocol, n_way=n_way)
                per_clip[name] = acc.mean(1)

    def _video_nway(self, clips, preds, metrics, per_clip, cache_key) -> None:
        model = self.models.video_classifier
        gt_logits = self._logits(model, clips, None if cache_key is None else (*cache_key, "video"))
        pred_logits = run_batched(model, preds, self.batch_size, self.device)
        s = self.nway
        for protocol in s.protocols:
            for n_way in s.n_ways:
                r = nway_topk(
                    gt_logits, pred_logits, n_way, s.top_k, s.num_trials, protocol, s.sampler, s.seed
                )
                name = f"video_{n_way}way_{protocol}"
                label = self._nway_label(
                    "video-level", n_way, protocol, self.models.names.get("video_classifier", "VideoMAE")
                )
                metrics[name] = entry(
                    r.mean, r.mean_std, len(r.accuracy), label, protocol=protocol, n_way=n_way
                )
                per_clip[name] = r.accuracy

    def _clip_pcc(self, preds, metrics, per_clip) -> None:
        n, f = preds.shape[:2]
        for variant in self.clip_pcc_variants:
            model = self.models.clip_embedders.get(variant)
            if model is None:
                continue
            emb = run_batched(model, preds.flatten(0, 1), self.batch_size, self.device).view(n, f, -1)
            name = f"clip_pcc_{variant}"
            clip_values = clip_pcc_per_clip(emb, variant).numpy()
            value, std = clip_pcc_score(emb, variant)
            over = "over all adjacent pairs of all clips" if variant == "adjacent" else "mean over clips"
            label = f"CLIP-pcc {variant}, {self.models.names.get(variant, 'CLIP')}, {over}, {self.frame_selection}"
            metrics[name] = entry(value, std, n, label, variant=variant)
            per_clip[name] = clip_values
