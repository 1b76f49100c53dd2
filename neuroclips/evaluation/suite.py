"""Score one set of reconstructions against ground truth under every configured protocol.

Every metric is kept per pair first (``Scorer.values[name]``: (clips, pairs per clip), see
``neuroclips.metrics.aggregate``) and reported under its default aggregation, which follows the published runners
(evaluation.md 3.9-3.10):

* frame-level metrics (N-way, SSIM, PSNR ``skimage``, PixCorr, MSE, Hue-pcc) ``per_position``: mean over clips and
  std over clips per position, both averaged over the positions;
* N-way: the +- is the mean binomial std (MinD-Video, copied by every peer) under every aggregation;
* PSNR ``mind_animator`` and CLIP-pcc ``all_pairs``: ``per_clip`` (Mind-Animator ``PSNR.py``; NEURONS
  ``clip_score_frame``); CLIP-pcc ``adjacent``: ``all_pairs`` (NEURONS' former ``compute_clip_pcc``);
* VIFI-score per clip, EPE per consecutive frame pair: ``per_clip`` (Mind-Animator).

Undefined values (PixCorr or Hue-pcc of a constant frame) are left out of the means (NeuroClips uses ``nanmean``) and
counted in the entry's ``undefined``. Every entry carries a seeded bootstrap 95 % interval over clips
(``ci_low``/``ci_high``, ``neuroclips.metrics.stats``) and its ``aggregation``. ``presets.py`` re-aggregates the same
values into each peer's row.

Each result carries a label that names its protocol, model and frame selection, so every number says how it was made.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from neuroclips.evaluation.flow_model import clip_epe
from neuroclips.evaluation.vifi_clip import vifi_score
from neuroclips.metrics.aggregate import aggregate, per_clip_values
from neuroclips.metrics.clip_pcc import MIND_ANIMATOR_VIFI_GATE, pair_similarities
from neuroclips.metrics.hue import hue_pcc
from neuroclips.metrics.mse import mse
from neuroclips.metrics.nway import NWAY_PROTOCOLS, nway_topk, nway_topk_frames
from neuroclips.metrics.pixcorr import pixcorr
from neuroclips.metrics.psnr import psnr
from neuroclips.metrics.ssim import ssim_variants
from neuroclips.metrics.stats import bootstrap_ci


@dataclass
class NWaySettings:
    protocols: list[str] = field(default_factory=lambda: ["mindvideo", "strict"])
    n_ways: list[int] = field(default_factory=lambda: [2, 50])
    top_k: int = 1
    num_trials: int = 100
    sampler: str = "reference"
    seed: int = 0
    ties: str = "distractor_wins"  # neuroclips.metrics.nway: who wins an exact tie
    softmax_dtype: str = "float32"  # float32 | logits (the classifier's dtype, fp16 on GPU as MinD-Video)


@dataclass
class Bootstrap:
    reps: int = 1000
    level: float = 0.95
    seed: int = 0


@dataclass
class EvalModels:
    """Frozen models and the names printed next to their numbers."""

    frame_classifier: nn.Module | None = None
    video_classifier: nn.Module | None = None
    clip_embedders: dict[str, nn.Module] = field(default_factory=dict)  # CLIP-pcc variant -> embedder
    flow: nn.Module | None = None  # EPE (evaluation/flow_model.py)
    vifi: nn.Module | None = None  # VIFI-score and the Mind-Animator gate (evaluation/vifi_clip.py)
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
        extra_metrics: list[str] = ("mse", "hue_pcc", "epe", "vifi"),
        bootstrap: Bootstrap | None = None,
    ):
        self.models, self.nway = models, nway
        self.ssim_variants, self.psnr_variants = list(ssim_variants), list(psnr_variants)
        self.clip_pcc_variants, self.with_pixcorr = list(clip_pcc_variants), with_pixcorr
        self.batch_size, self.device = batch_size, torch.device(device)
        self.frame_selection = frame_selection
        self.extra_metrics = list(extra_metrics)
        self.bootstrap = bootstrap or Bootstrap()
        self._gt_cache: dict[tuple, torch.Tensor] = {}
        self._dtype_copies: dict[tuple, nn.Module] = {}
        self._reset()

    def _reset(self) -> None:
        self.values: dict[str, np.ndarray] = {}  # name -> (clips, pairs) per-pair values
        self.default_aggregation: dict[str, str] = {}
        self.binomial_std: dict[str, np.ndarray] = {}  # N-way name -> (clips, pairs) binomial stds
        self._logits: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        self._ci: dict[tuple, tuple[float, float]] = {}
        self._labels: dict[str, tuple[str, dict]] = {}

    # -------------------------------------------------------------------------------------------- public
    def score(
        self, gt: torch.Tensor, recon: torch.Tensor, cache_key: tuple | None = None
    ) -> tuple[dict, dict]:
        """(metrics, per_clip): metrics[name] = entry(...); per_clip[name] = float64 (N,) per-clip values."""
        if gt.shape != recon.shape:
            raise ValueError(
                f"evaluation: ground truth {tuple(gt.shape)} and reconstruction {tuple(recon.shape)} differ in shape."
            )
        self._reset()
        self._cache_key = cache_key
        clips = gt if gt.ndim == 5 else gt.unsqueeze(1)
        preds = recon if recon.ndim == 5 else recon.unsqueeze(1)
        self._clips, self._preds = clips, preds
        self.is_video = gt.ndim == 5
        self._pixel_metrics(clips, preds)
        if self.models.frame_classifier is not None:
            self._frame_nway(clips, preds)
        if gt.ndim == 5 and self.models.video_classifier is not None:
            self._video_nway(clips, preds)
        if gt.ndim == 5 and preds.shape[1] > 1:
            self._clip_pcc(preds)
            self._video_metrics(clips, preds)
        metrics = {name: self.entry(name) for name in self._labels}
        per_clip = {name: per_clip_values(self.values[name]) for name in self._labels}
        return metrics, per_clip

    def ci(self, name: str, how: str, values: np.ndarray | None = None) -> tuple[float, float]:
        key = (name, how)
        if key not in self._ci or values is not None:
            b = self.bootstrap
            v = self.values[name] if values is None else values
            ci = bootstrap_ci(v, how, b.reps, b.level, b.seed)
            if values is not None:
                return ci
            self._ci[key] = ci
        return self._ci[key]

    def entry(self, name: str, how: str | None = None, label_suffix: str = "") -> dict:
        """The reported entry of metric ``name`` under aggregation ``how`` (default: the metric's own)."""
        how = how or self.default_aggregation[name]
        v = self.values[name]
        value, std = aggregate(v, how)
        if name in self.binomial_std:  # N-way: the +- is the mean binomial std (MinD-Video)
            std = float(np.nanmean(self.binomial_std[name]))
        label, extra = self._labels[name]
        lo, hi = self.ci(name, how)
        e = entry(
            value, std, v.shape[0], f"{label}{label_suffix}", aggregation=how, ci_low=lo, ci_high=hi, **extra
        )
        undefined = int(np.isnan(v).sum())
        if undefined or name in ("pixcorr", "hue_pcc"):
            e["undefined"] = undefined  # pairs left out of the means (constant frames)
        return e

    # -------------------------------------------------------------------------------------------- parts
    def add(self, name: str, values, how: str, label: str, **extra) -> None:
        self.values[name] = np.asarray(values, dtype=np.float64).reshape(self._n, -1)
        self.default_aggregation[name] = how
        self._labels[name] = (label, extra)

    @property
    def _n(self) -> int:
        return self._clips.shape[0]

    def _pixel_metrics(self, clips, preds) -> None:
        n, f = clips.shape[:2]
        flat_gt, flat_pred = clips.flatten(0, 1), preds.flatten(0, 1)
        sel = self.frame_selection
        for v, vals in ssim_variants(flat_pred, flat_gt, self.ssim_variants, device=self.device).items():
            label = f"SSIM {v}, per frame position, {sel}"
            self.add(f"ssim_{v}", vals.numpy(), "per_position", label, variant=v)
        for v in self.psnr_variants:
            vals = psnr(flat_pred, flat_gt, variant=v, device=self.device).numpy()
            if v == "mind_animator":  # per clip first, then over clips
                label = f"PSNR {v} (20 log10(255/sqrt(MSE)), per-clip mean), {sel}"
                self.add(f"psnr_{v}", vals, "per_clip", label, variant=v)
            else:
                label = f"PSNR {v} (data range 255), per frame position, {sel}"
                self.add(f"psnr_{v}", vals, "per_position", label, variant=v)
        if self.with_pixcorr:
            vals = pixcorr(flat_pred, flat_gt, device=self.device).numpy()
            label = f"PixCorr (Pearson, bilinear 425x425; nanmean: constant frames left out), {sel}"
            self.add("pixcorr", vals, "per_position", label)
        if "mse" in self.extra_metrics:
            vals = mse(flat_pred, flat_gt, device=self.device).numpy()
            self.add(
                "mse", vals, "per_position", f"MSE (frames in [0, 1], MinD-Video), per frame position, {sel}"
            )
        if "hue_pcc" in self.extra_metrics:
            vals = hue_pcc(flat_pred, flat_gt).numpy()
            label = f"Hue-pcc (Pearson of OpenCV 8-bit hue, Mind-Animator; constant hue left out), {sel}"
            self.add("hue_pcc", vals, "per_position", label)

    def classifier(self, which: str, dtype: str | None = None) -> nn.Module:
        """The frame or video classifier, in ``dtype`` on CUDA (a cast copy, built once); fp32 on CPU."""
        model = getattr(self.models, which)
        if dtype is None or self.device.type != "cuda":
            return model
        want = torch.float16 if dtype == "float16" else torch.float32
        if next(model.parameters()).dtype == want:
            return model
        key = (which, dtype)
        if key not in self._dtype_copies:
            self._dtype_copies[key] = copy.deepcopy(model).to(want)
        return self._dtype_copies[key]

    def logits(self, level: str, dtype: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(gt, pred) logits of ``level`` ('frame' (N, F, C) or 'video' (N, C)) in the classifier's dtype."""
        key = (level, dtype)
        if key in self._logits:
            return self._logits[key]
        model = self.classifier(f"{level}_classifier", dtype)
        clips, preds = self._clips, self._preds
        gt_in, pred_in = (clips.flatten(0, 1), preds.flatten(0, 1)) if level == "frame" else (clips, preds)
        ck = None if self._cache_key is None else (*self._cache_key, level, dtype)
        if ck is not None and ck in self._gt_cache:
            gt_l = self._gt_cache[ck]
        else:
            gt_l = run_batched(model, gt_in, self.batch_size, self.device)
            if ck is not None:
                self._gt_cache[ck] = gt_l
        pred_l = run_batched(model, pred_in, self.batch_size, self.device)
        # the wrappers return float32; casting back to the model's dtype is exact (fp16 -> fp32 -> fp16)
        model_dtype = next(model.parameters()).dtype
        gt_l, pred_l = gt_l.to(model_dtype), pred_l.to(model_dtype)
        if level == "frame":
            n, f = clips.shape[:2]
            gt_l, pred_l = gt_l.view(n, f, -1), pred_l.view(n, f, -1)
        self._logits[key] = (gt_l, pred_l)
        return gt_l, pred_l

    def nway_values(
        self, level: str, protocol: str, n_way: int, dtype: str | None, softmax_dtype: str, ties: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """(accuracy, binomial std), each (clips, positions), for one N-way setting."""
        gt_l, pred_l = self.logits(level, dtype)
        if softmax_dtype == "float32":
            gt_l, pred_l = gt_l.float(), pred_l.float()
        s = self.nway
        if level == "frame":
            _, _, acc, std = nway_topk_frames(
                gt_l, pred_l, n_way, s.top_k, s.num_trials, protocol, s.sampler, s.seed, ties, return_std=True
            )
            return acc, std
        r = nway_topk(gt_l, pred_l, n_way, s.top_k, s.num_trials, protocol, s.sampler, s.seed, ties)
        return r.accuracy[:, None], r.std[:, None]

    def add_nway(self, name: str, level: str, protocol: str, n_way: int, dtype, softmax_dtype, ties) -> None:
        acc, std = self.nway_values(level, protocol, n_way, dtype, softmax_dtype, ties)
        model = self.models.names.get(f"{level}_classifier", "ViT" if level == "frame" else "VideoMAE")
        s = self.nway
        precision = (
            ""
            if dtype is None
            else f", classifier {dtype if self.device.type == 'cuda' else 'float32 (CPU)'}"
        )
        label = (
            f"{level}-level {n_way}-way top-{s.top_k}, protocol {protocol} ({NWAY_PROTOCOLS[protocol]} GT "
            f"class{'es' if NWAY_PROTOCOLS[protocol] > 1 else ''}), {s.num_trials} trials, seed {s.seed}, sampler "
            f"{s.sampler}, softmax {softmax_dtype}, ties {ties}{precision}, {model}, {self.frame_selection}"
        )
        self.add(name, acc, "per_position", label, protocol=protocol, n_way=n_way)
        self.binomial_std[name] = std

    def _frame_nway(self, clips, preds) -> None:
        s = self.nway
        for protocol in s.protocols:
            for n_way in s.n_ways:
                self.add_nway(
                    f"frame_{n_way}way_{protocol}", "frame", protocol, n_way, None, s.softmax_dtype, s.ties
                )

    def _video_nway(self, clips, preds) -> None:
        s = self.nway
        for protocol in s.protocols:
            for n_way in s.n_ways:
                self.add_nway(
                    f"video_{n_way}way_{protocol}", "video", protocol, n_way, None, s.softmax_dtype, s.ties
                )

    def _clip_pcc(self, preds) -> None:
        n, f = preds.shape[:2]
        for variant in self.clip_pcc_variants:
            model = self.models.clip_embedders.get(variant)
            if model is None:
                continue
            emb = run_batched(model, preds.flatten(0, 1), self.batch_size, self.device).view(n, f, -1)
            pairs = pair_similarities(emb, variant).numpy()
            how = "all_pairs" if variant == "adjacent" else "per_clip"
            over = "over all adjacent pairs of all clips" if variant == "adjacent" else "mean over clips"
            label = f"CLIP-pcc {variant}, {self.models.names.get(variant, 'CLIP')}, {over}, {self.frame_selection}"
            self.add(f"clip_pcc_{variant}", pairs, how, label, variant=variant)

    def _video_metrics(self, clips, preds) -> None:
        sel = self.frame_selection
        if "vifi" in self.extra_metrics and self.models.vifi is not None:
            vals = vifi_score(self.models.vifi, clips, preds, self.batch_size).numpy()
            label = (
                f"VIFI-score (ViFi-CLIP video cosine), {self.models.names.get('vifi', 'ViFi-CLIP')}, {sel}"
            )
            self.add("vifi", vals, "per_clip", label)
        if "epe" in self.extra_metrics and self.models.flow is not None:
            vals = clip_epe(self.models.flow, clips, preds, max(1, self.batch_size // 4)).numpy()
            label = f"EPE (optical flow end-point error, px; lower is better), {self.models.names.get('flow', 'RAFT')}, {sel}"
            self.add("epe", vals, "per_clip", label)

    def gated_clip_pcc(self, variant: str) -> np.ndarray | None:
        """Mind-Animator's CLIP-pcc pairs: a clip whose VIFI-score is <= 0.6 scores 0 (None without VIFI-scores)."""
        name = f"clip_pcc_{variant}"
        if name not in self.values or "vifi" not in self.values:
            return None
        gate = self.values["vifi"][:, 0] <= MIND_ANIMATOR_VIFI_GATE
        out = self.values[name].copy()
        out[gate] = 0.0
        return out
