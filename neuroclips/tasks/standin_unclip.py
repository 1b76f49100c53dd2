"""Fitted tiny unCLIP keyframe generator for `stage=generators`: it learns to draw a frame from its CLIP tokens.

Why: the random tiny unCLIP turns any tokens into noise, so the demo's keyframe column said nothing. This stand-in is
the tiny architecture of neuroclips.models.unclip_generator (a diffusers UNet2DConditionModel on the "text_time"
route, and its AutoencoderKL), fitted on the training clips only (validation blocks held out, test clips never read):

1. the VAE: the generators' shared one (standin_generator_vae.py: fitted once on the training frames at the sampled
   size, L1 + KL, for this unCLIP and the video generator), re-parametrised exactly (no refit) so that (a) its latents times unclip6's fixed ``scaling_factor`` (0.13025, a fact of the
   unclip config, not of the file) have unit variance, and (b) MindEye2's output mapping clamp(0.8·x + 0.2), which
   the keyframe sampler applies by default, gives the frame back;
2. the UNet, as unclip6 was trained: ε-prediction on the LegacyDDPM (scaled-linear) noise schedule, context = the
   frozen CLIP image encoder's tokens of the same frame (the tokens the SR learns to predict), vector conditioning
   [768, 768, 0, 0]; with probability `uncond_prob` the context is replaced by fresh N(0, 1) tokens, which is how the
   sampler forms its unconditional branch (`keyframe.uncond=randn`), so classifier-free guidance has a meaning.

Layout: one safetensors file with the sgm keys of MindEye2's unclip6 (``model.diffusion_model.*``,
``first_stage_model.*``; neuroclips.models.unclip_writer), read by the paper-scale loader
(`build_unclip(pretrained="local", unclip_file=...)`, strict). The held-out check samples keyframes through that
loader. A `standin.json` marker beside the file records the data fingerprint and the settings; a later run re-uses
the file while they match. Exactly `steps` steps each (never time-bounded): the result depends on seed and data only.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neuroclips.tasks.standin_fit_steps import FixedStepFit
from neuroclips.tasks.standin_generator_vae import GeneratorVaeStandin
from neuroclips.tasks.standin_marker import marker_matches, write_marker
from neuroclips.utils.atomic import atomic_folder

log = logging.getLogger("neuroclips")

MINDEYE2_OUTPUT = (0.8, 0.2)  # keyframe output_mapping "mindeye2": image = clamp(0.8·decoded + 0.2)


def read_frames(data_file: str | Path, rows: np.ndarray) -> torch.Tensor:
    """Every frame (M·6, 3, H, W) of these training-split rows, float in [0, 1]."""
    with h5py.File(data_file, "r") as f:
        frames = f["stimuli/train/frames"][:][np.sort(rows)]
    return torch.from_numpy(frames.reshape(-1, *frames.shape[2:])).float().div(255.0)


@torch.no_grad()
def encode_tokens(encoder: nn.Module, images: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    return torch.cat([encoder.encode(images[i : i + chunk]) for i in range(0, len(images), chunk)]).float()


@torch.no_grad()
def latent_means(vae, images: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """The VAE posterior means of images in [0, 1], encoded `chunk` at a time (not yet × scaling factor)."""
    return torch.cat(
        [vae.encode(images[i : i + chunk] * 2 - 1).latent_dist.mode() for i in range(0, len(images), chunk)]
    )


@torch.no_grad()
def fit_latent_scale_and_output(vae, images: torch.Tensor) -> float:
    """Re-parametrise a fitted AutoencoderKL in place (outputs of encode→decode unchanged up to the two affine maps
    below); returns the latent std before the change. (a) ``rescale_latents``; (b) decoder output
    y → (y + 1 − 2·0.2) / (2·0.8), so that 0.8·y' + 0.2 = (y + 1) / 2, the frame in [0, 1]."""
    std = rescale_latents(vae, images)
    scale, shift = MINDEYE2_OUTPUT
    vae.decoder.conv_out.weight /= 2 * scale
    vae.decoder.conv_out.bias.add_(1 - 2 * shift).div_(2 * scale)
    return std


@torch.no_grad()
def rescale_latents(vae, images: torch.Tensor) -> float:
    """Make latents × the config's fixed ``scaling_factor`` unit-variance, exactly (decoded images unchanged):
    latent mean ×a, log-variance +2·ln a in ``quant_conv``, ÷a in ``post_quant_conv``, a = 1 / (std · scaling_factor).
    Returns the latent std before the change."""
    std = float(latent_means(vae, images).std())
    a = 1.0 / (std * vae.config.scaling_factor)
    c = vae.config.latent_channels
    vae.quant_conv.weight[:c] *= a
    vae.quant_conv.bias[:c] *= a
    vae.quant_conv.bias[c:] += 2 * math.log(a)
    vae.post_quant_conv.weight /= a
    return std


def fit_unet(unet, latents, tokens, *, steps, batch_size, lr, uncond_prob, seed) -> dict:
    """ε-prediction MSE on the unclip6 noise schedule; exactly `steps` AdamW steps (OneCycle)."""
    from diffusers import DDPMScheduler

    from neuroclips.models.unclip_generator import UNCLIP_SCHEDULER

    schedule = {
        k: UNCLIP_SCHEDULER[k] for k in ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule")
    }
    noising = DDPMScheduler(**schedule)
    generator = torch.Generator().manual_seed(seed)
    fit = FixedStepFit(unet.parameters(), lr=lr, steps=steps, what="unCLIP UNet")
    time_ids = torch.tensor([[768.0, 768.0, 0.0, 0.0]]).repeat(batch_size, 1)  # KeyframeRecipe's defaults
    no_text = torch.zeros(batch_size, 0)
    unet.requires_grad_(True).train()
    for step in range(steps):
        index = torch.randint(0, len(latents), (batch_size,), generator=generator)
        x0, context = latents[index], tokens[index].clone()
        drop = torch.rand(batch_size, generator=generator) < uncond_prob
        context[drop] = torch.randn(int(drop.sum()), *context.shape[1:], generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        t = torch.randint(0, noising.config.num_train_timesteps, (batch_size,), generator=generator)
        predicted = unet(
            noising.add_noise(x0, noise, t),
            t,
            encoder_hidden_states=context,
            added_cond_kwargs={"text_embeds": no_text, "time_ids": time_ids},
        ).sample
        fit.step(step, F.mse_loss(predicted, noise))
    unet.eval().requires_grad_(False)
    return fit.summary()


def frame_pixcorr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean Pearson r over images (N, 3, H, W) at their own size (the held-out check; not the eval's PixCorr)."""
    a, b = a.flatten(1), b.flatten(1)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return float(((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-8)).mean())


class TinyUnclipStandin:
    """Fits and saves the tiny unCLIP (see module docstring); called by GeneratorStandins.run."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        out_file: str | None,
        clip_encoder: nn.Module | None = None,
        context_dim: int = 32,
        gen_size: int = 32,
        sample_steps: int = 10,
        vae: GeneratorVaeStandin | None = None,
        unet: dict | None = None,
        seed: int = 0,
    ) -> None:
        if enabled and not out_file:
            raise ValueError(f"scale.standins.unclip: enabled=true needs file, found {out_file!r}.")
        if enabled and vae is None:
            raise ValueError("scale.standins.unclip: enabled=true needs the generators' VAE stand-in (vae).")
        self.enabled = enabled
        self.out_file = Path(out_file) if out_file else None
        self.clip_encoder = clip_encoder
        self.architecture = dict(context_dim=int(context_dim), gen_size=int(gen_size))
        self.vae = vae
        self.training = {"unet": dict(unet or {})}
        self.sample_steps, self.seed = int(sample_steps), seed

    def settings(self) -> dict:
        encoder = self.clip_encoder.describe() if hasattr(self.clip_encoder, "describe") else None
        from neuroclips.models.unclip_generator import UNCLIP_CONFIGS

        return {  # the nets' configs too: a file fitted for another tiny architecture is refitted
            "training": self.training,
            "vae": self.vae.settings() if self.vae is not None else None,
            "architecture": self.architecture,
            "nets": UNCLIP_CONFIGS["tiny"],
            "clip_encoder": encoder,
            "seed": self.seed,
        }

    def is_current(self, fingerprint: dict) -> bool:
        return (
            self.out_file is not None
            and self.out_file.exists()
            and marker_matches(
                self.out_file.parent, {"fingerprint": fingerprint, "settings": self.settings()}
            )
        )

    def fit_and_save(self, data_file: str, held_out_rows: np.ndarray, fingerprint: dict) -> dict:
        """Fit on the training rows without `held_out_rows`; sample keyframes of the held-out rows through the
        paper-scale loader and report them against the mean training frame and against shuffled tokens."""
        from safetensors.torch import save_file

        from neuroclips.models.unclip_generator import build_unclip
        from neuroclips.models.unclip_writer import unclip_state_dict

        if self.clip_encoder is None:
            raise ValueError(
                "scale.standins.unclip: enabled=true needs the frozen CLIP encoder (clip_encoder)."
            )
        with h5py.File(data_file, "r") as f:
            n_train = f["stimuli/train/frames"].shape[0]
        images = read_frames(data_file, np.setdiff1d(np.arange(n_train), held_out_rows))
        tokens = encode_tokens(self.clip_encoder, images)
        size = self.architecture["gen_size"]
        small = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        components = build_unclip("random", "tiny", self.architecture["context_dim"], init_seed=self.seed)
        vae, unet = components.vae, components.unet
        self.vae.load_into(vae)  # the generators' shared VAE (standin_generator_vae.py), fitted before this
        stats = {"vae": {"shared": str(self.vae.out_dir)}}
        stats["vae"]["latent_std_before_rescale"] = fit_latent_scale_and_output(vae, small)
        latents = latent_means(vae, small) * vae.config.scaling_factor
        stats["unet"] = fit_unet(unet, latents, tokens, seed=self.seed, **self.training["unet"])
        with atomic_folder(self.out_file.parent) as tmp:  # a killed run never leaves a half-written file
            tmp.mkdir(parents=True)
            file = tmp / self.out_file.name
            save_file({k: v.contiguous() for k, v in unclip_state_dict(unet, vae).items()}, str(file))
            stats["validation"] = self.held_out_check(
                file, data_file, held_out_rows, small.mean(0, keepdim=True)
            )
            stats["frames"] = int(images.shape[0])
            write_marker(tmp, {"fingerprint": fingerprint, "settings": self.settings(), "fit": stats})
        log.info("standins: fitted unCLIP %s -> %s", stats, self.out_file)
        return stats

    @torch.no_grad()
    def held_out_check(self, file: Path, data_file: str, rows: np.ndarray, mean_frame: torch.Tensor) -> dict:
        """Keyframes of the held-out clips' frame 2 from their true tokens, read back through the paper loader."""
        from neuroclips.generation.keyframe import KeyframeRecipe, sample_keyframes
        from neuroclips.models.unclip_generator import build_unclip

        size = self.architecture["gen_size"]
        loaded = build_unclip("local", "tiny", self.architecture["context_dim"], unclip_file=str(file))
        with h5py.File(data_file, "r") as f:
            frames = f["stimuli/train/frames"][:][np.sort(rows), 2]
        truth = torch.from_numpy(frames).float().div(255.0)
        tokens = encode_tokens(self.clip_encoder, truth)
        truth = F.interpolate(truth, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        recipe = KeyframeRecipe(steps=self.sample_steps, gen_size=size, out_size=size, seed=self.seed)
        indices = list(range(len(truth)))
        ours = sample_keyframes(loaded.unet, loaded.vae, loaded.scheduler, recipe, tokens, indices)
        shuffled = sample_keyframes(
            loaded.unet, loaded.vae, loaded.scheduler, recipe, tokens.roll(1, 0), indices
        )
        return {
            "clips": len(truth),
            "pixcorr": frame_pixcorr(ours, truth),
            "pixcorr_shuffled_tokens": frame_pixcorr(shuffled, truth),
            "pixcorr_mean_frame": frame_pixcorr(mean_frame.expand_as(truth), truth),
            "mse": float(F.mse_loss(ours, truth)),
            "mse_shuffled_tokens": float(F.mse_loss(shuffled, truth)),
            "mse_mean_frame": float(F.mse_loss(mean_frame.expand_as(truth), truth)),
        }
