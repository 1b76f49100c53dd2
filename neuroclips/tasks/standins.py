"""Stage `standins`: fit the small tiny-scale AutoencoderKL (and, when configured, the tiny N-way classifiers of
neuroclips.tasks.standin_classifiers, the tiny BLIP-2 captioner of neuroclips.tasks.standin_captioner and the VAE
the two fitted generators share, neuroclips.tasks.standin_generator_vae) to the simulated training frames, once.
The generators' UNets (unCLIP, AnimateDiff + SparseCtrl) are fitted by the next stage, `generators`
(neuroclips.tasks.standin_generators), which the pipeline runs after targets, beside sr, sr_prior, pr and blurry.

Why: a randomly initialised VAE makes the PR's pixel-space results meaningless (its decoder maps any latent to
noise), so at `scale=tiny` the frozen SD-VAE is replaced by a small AutoencoderKL fitted here to the training
frames (validation blocks held out, test frames never seen). It is saved with diffusers' `save_pretrained` into
`out_dir` (default `${paths.data_dir}/standins/tiny_vae`, beside the data file) together with `standin.json`,
which records a content hash of the frames it was fitted to; a later run re-uses it unless the frames changed or
`overwrite=true`. The latent scaling factor is set like SD's 0.18215: 1 / std of the fitted latents.

The fits are independent; they run side by side in worker processes (`workers`; neuroclips/tasks/standin_jobs.py).

At `scale=paper` the stage does nothing (`enabled=false`): the real VAE comes from `${paths.weights_dir}`.
Order in the demo: standins -> targets -> generators (beside sr -> sr_prior -> pr -> blurry) -> keyframe -> ...
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from neuroclips.models.frozen_vae import build_autoencoder_kl
from neuroclips.stage_types import StageResult
from neuroclips.tasks.standin_captioner import TinyCaptionerStandin
from neuroclips.tasks.standin_classifiers import TinyClassifierStandins
from neuroclips.tasks.standin_generator_vae import GeneratorVaeStandin
from neuroclips.tasks.standin_jobs import FitJob, run_fit_jobs
from neuroclips.tasks.standin_marker import marker_matches, write_marker
from neuroclips.utils.atomic import atomic_folder

log = logging.getLogger("neuroclips")

# About the seconds each fit takes in the demo on 2 idle cores (fresh clone, 2026-12-07; the captioner: earlier runs):
# the longest start first when the fits run side by side.
FIT_COST = {
    "video": 345,
    "unclip": 215,
    "captioner": 120,
    "tiny_vae": 120,
    "generator_vae": 125,
    "classifiers": 26,
}


def data_fingerprint(path: str | Path, sample_every: int = 25) -> dict:
    """Identity of the frames the stand-in was fitted to: shapes plus a hash of every `sample_every`-th training
    clip. Content-based on purpose: stage=targets writes into the same file, which must not trigger a refit."""
    digest = hashlib.sha1()
    with h5py.File(path, "r") as f:
        frames = f["stimuli/train/frames"]
        digest.update(str((frames.shape, f["stimuli/test/frames"].shape)).encode())
        for row in range(0, frames.shape[0], sample_every):
            digest.update(frames[row].tobytes())
    return {"frames_sha1": digest.hexdigest()}


def held_out_split(data_file: str | Path, data_cfg) -> tuple[np.ndarray, dict]:
    """The training rows every stand-in holds out (the fit stages' validation blocks, ``data.val_*``) and the
    fingerprint their markers record (the frames' identity and those rows). Stage standins and stage generators
    both take them from here: generators finds the shared VAE current only if the two agree."""
    from neuroclips.data.sampler import validation_rows

    with h5py.File(data_file, "r") as f:
        n_train = f["stimuli/train/frames"].shape[0]
    held_out = validation_rows(
        n_train, float(data_cfg.val_fraction), int(data_cfg.val_block), int(data_cfg.val_seed)
    )
    fingerprint = {**data_fingerprint(data_file), "held_out_rows": [int(r) for r in np.sort(held_out)]}
    return held_out, fingerprint


def fit_unless_current(
    key: str,
    what: str,
    standin,
    data_file,
    held_out: np.ndarray,
    fingerprint: dict,
    overwrite: bool,
    metrics: dict,
) -> list[FitJob]:
    """[the fit of ``standin``], or [] when its files match this data and its settings already (then
    ``metrics[<key>_reused]``); ``what`` names it in the log line."""
    if standin.is_current(fingerprint) and not overwrite:
        log.info("standins: %s up to date for %s", what, data_file)
        metrics[f"{key}_reused"] = True
        return []
    return [FitJob(key, standin.fit_and_save, (data_file, held_out, fingerprint), FIT_COST[key])]


def read_training_frames(data_file: str | Path, held_out_rows: np.ndarray) -> np.ndarray:
    """uint8 (N·6, 3, H, W) frames of the training split without the held-out (validation) rows."""
    with h5py.File(data_file, "r") as f:
        frames = f["stimuli/train/frames"][:]
    keep = np.setdiff1d(np.arange(frames.shape[0]), held_out_rows)
    return frames[keep].reshape(-1, *frames.shape[2:])


def fit_autoencoder(
    vae: nn.Module,
    frames: np.ndarray,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    kl_weight: float,
    seed: int,
    crop_size: int | None = None,
) -> dict[str, float]:
    """Fit `vae` (a diffusers AutoencoderKL) to uint8 frames with L1 + kl_weight × KL; returns final losses.

    `crop_size` trains on random square crops (the VAE is fully convolutional, so it still decodes full frames);
    this makes a step several times cheaper on a CPU. Always exactly `steps` steps (never time-bounded), so the
    fitted weights depend on the seed and the data only, not on the machine's speed.
    """
    generator = torch.Generator().manual_seed(seed)
    data = torch.from_numpy(frames)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0, fused=True)  # see FixedStepFit
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=lr * 0.05)
    vae.train()
    start, l1, kl, done = time.time(), torch.tensor(0.0), torch.tensor(0.0), 0
    for step in range(steps):
        index = torch.randint(0, data.shape[0], (batch_size,), generator=generator)
        images = data[index]
        if crop_size is not None and crop_size < images.shape[-1]:
            top, left = torch.randint(0, images.shape[-1] - crop_size + 1, (2,), generator=generator).tolist()
            images = images[..., top : top + crop_size, left : left + crop_size]
        images = images.float().div(255.0) * 2 - 1
        posterior = vae.encode(images).latent_dist
        decoded = vae.decode(posterior.sample()).sample
        l1 = (decoded - images).abs().mean()
        kl = posterior.kl().mean() / images[0].numel()
        loss = l1 + kl_weight * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        done = step + 1
        if done % max(1, steps // 10) == 0 or done == steps:  # progress: ten lines per fit
            log.info(
                "standins: tiny VAE step %d/%d, L1 %.4f (%.0f s)", done, steps, l1.item(), time.time() - start
            )
    vae.eval()
    return {
        "l1": float(l1.detach()),
        "kl_per_dim": float(kl.detach()),
        "steps": done,
        "seconds": round(time.time() - start, 1),
    }


@torch.no_grad()
def latent_scaling_factor(vae: nn.Module, frames: np.ndarray, count: int = 256) -> float:
    """1 / std of the latent means over a sample of frames (how SD's 0.18215 was chosen)."""
    images = torch.from_numpy(frames[:count]).float().div(255.0) * 2 - 1
    return float(1.0 / vae.encode(images).latent_dist.mode().std().clamp_min(1e-6))


@torch.no_grad()
def reconstruction_error(vae: nn.Module, frames: np.ndarray, count: int = 256) -> float:
    images = torch.from_numpy(frames[-count:]).float().div(255.0) * 2 - 1
    decoded = vae.decode(vae.encode(images).latent_dist.mode()).sample
    return float((decoded.clamp(-1, 1) - images).abs().mean() / 2)  # mean abs error in [0, 1] pixel units


class TinyVaeStandin:
    """Task object for `stage=standins` (see module docstring)."""

    def __init__(
        self,
        *,
        out_dir: str,
        enabled: bool = True,
        block_out_channels: Sequence[int] = (32, 64, 64),
        layers_per_block: int = 1,
        latent_channels: int = 4,
        norm_num_groups: int = 8,
        mid_block_add_attention: bool = False,
        image_size: int = 64,
        steps: int = 2000,
        batch_size: int = 16,
        crop_size: int | None = 32,
        lr: float = 3e-3,
        kl_weight: float = 1e-4,
        overwrite: bool = False,
        seed: int = 0,
        classifiers: TinyClassifierStandins | None = None,
        captioner: TinyCaptionerStandin | None = None,
        generator_vae: GeneratorVaeStandin | None = None,
        workers: int | None = None,
        threads_per_fit: int | None = 1,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.classifiers = classifiers if classifiers is not None and classifiers.enabled else None
        self.captioner = captioner if captioner is not None and captioner.enabled else None
        # the VAE the unCLIP and the video generator share (stage=generators fits their UNets on it)
        self.generator_vae = generator_vae if generator_vae is not None and generator_vae.enabled else None
        self.enabled = enabled
        self.architecture = dict(
            block_out_channels=list(block_out_channels),
            layers_per_block=layers_per_block,
            latent_channels=latent_channels,
            norm_num_groups=norm_num_groups,
            sample_size=image_size,
            mid_block_add_attention=mid_block_add_attention,
        )
        self.training = dict(
            steps=steps, batch_size=batch_size, crop_size=crop_size, lr=lr, kl_weight=kl_weight
        )
        self.overwrite, self.seed = overwrite, seed
        self.workers = workers  # processes for the fits (standin_jobs.py); 1: one after another in this one
        # each fit's threads, the same whatever runs beside it (standin_jobs.py)
        self.threads_per_fit = threads_per_fit

    def build_for_dry_run(self) -> dict[str, nn.Module]:
        return {"tiny_vae": build_autoencoder_kl(**self.architecture)} if self.enabled else {}

    def settings(self) -> dict:
        """What the fitted weights depend on besides the data. Only these, not the whole stage's fingerprint: a
        change to another stand-in's settings does not refit this VAE, and through it rerun targets and the PR."""
        return {"architecture": self.architecture, "training": dict(self.training), "seed": int(self.seed)}

    def is_current(self, fingerprint: dict) -> bool:
        """Fitted to these frames and held-out rows (``fingerprint``: held_out_split's) with these settings."""
        return marker_matches(self.out_dir, {"fingerprint": fingerprint, "settings": self.settings()})

    def run(self, ctx):
        if not self.enabled and not any((self.classifiers, self.captioner, self.generator_vae)):
            return StageResult(metrics={"skipped": "scale uses local pretrained weights (enabled=false)"})
        if not ctx.is_global_zero:  # one process fits; others have nothing to do in this task
            return StageResult(metrics={"skipped": "not rank 0"})
        ctx.datamodule()  # writes the simulated file if it is missing (data.auto_create) and validates it
        held_out, fingerprint = held_out_split(ctx.data_file, ctx.cfg.data)
        outputs = {"tiny_vae": str(self.out_dir)} if self.enabled else {}
        jobs, metrics = [], {}
        if not self.enabled:  # the PR's VAE comes from local weights; the other stand-ins may still be wanted
            metrics["tiny_vae"] = "skipped (scale.pr.standin.enabled=false)"
        elif self.is_current(fingerprint) and not self.overwrite:
            log.info("standins: %s is up to date for %s", self.out_dir, ctx.data_file)
            metrics["reused"] = True
        else:
            jobs.append(
                FitJob(
                    "tiny_vae",
                    self._fit_vae,
                    (ctx.data_file, held_out, fingerprint),
                    FIT_COST["tiny_vae"],
                )
            )
        extras = {
            "classifiers": (
                "N-way classifiers are",
                dict(frame_classifier="frame_dir", video_classifier="video_dir"),
            ),
            "captioner": ("captioner is", dict(captioner="out_dir")),
            "generator_vae": ("generators' VAE is", dict(generator_vae="out_dir")),
        }
        for key, (what, paths) in extras.items():
            standin = getattr(self, key)
            if standin is None:
                continue
            outputs.update({name: str(getattr(standin, attr)) for name, attr in paths.items()})
            jobs += fit_unless_current(
                key, what, standin, ctx.data_file, held_out, fingerprint, self.overwrite, metrics
            )
        fitted = run_fit_jobs(jobs, self.workers, self.threads_per_fit)
        metrics.update(fitted.pop("tiny_vae", {}))
        metrics.update(fitted)
        return StageResult(metrics=metrics, outputs=outputs)

    def _fit_vae(self, data_file: str, held_out: np.ndarray, fingerprint: dict) -> dict:
        frames = read_training_frames(data_file, held_out)
        torch.manual_seed(self.seed)
        vae = build_autoencoder_kl(**self.architecture)
        stats = fit_autoencoder(vae, frames, seed=self.seed, **self.training)
        scale = latent_scaling_factor(vae, frames)
        vae.register_to_config(scaling_factor=scale)
        stats.update(
            scaling_factor=scale, recon_mae=reconstruction_error(vae, frames), frames=int(frames.shape[0])
        )
        self._save(vae, stats, fingerprint)
        log.info("standins: fitted tiny VAE %s -> %s", stats, self.out_dir)
        return stats

    def _save(self, vae: nn.Module, stats: dict, fingerprint: dict) -> None:
        with atomic_folder(self.out_dir) as tmp:  # a killed run never leaves a half-written VAE
            vae.save_pretrained(str(tmp))
            write_marker(tmp, {"fingerprint": fingerprint, "settings": self.settings(), "fit": stats})
