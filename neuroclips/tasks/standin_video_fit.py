"""The fitting loop of the tiny video stand-in (tasks/standin_video.py): nets, training videos, ε-prediction steps.

One noise prediction here is the pipeline's (AnimateDiffSparseControlNetPipeline's denoising step): the prompt
embedding repeated per frame, SparseCtrl's residuals added to the UNet's down and mid blocks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import (
    AutoencoderKL,
    DDPMScheduler,
    MotionAdapter,
    SparseControlNetModel,
    UNet2DConditionModel,
    UNetMotionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel

from neuroclips.tasks.standin_fit_steps import FixedStepFit

log = logging.getLogger("neuroclips")


@dataclass
class VideoNets:
    unet: UNetMotionModel
    unet_config: object  # the spatial UNet2DConditionModel's config (the single file's UNet)
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    controlnet: SparseControlNetModel


def build_trainable(seed: int, motion_norm: str) -> VideoNets:
    """The tiny video nets, freshly initialised from `seed` (motion modules and SparseCtrl outputs start at zero,
    as diffusers initialises them)."""
    from neuroclips.models.generator_loading import seeded_init
    from neuroclips.models.video_generator_configs import VIDEO_CONFIGS
    from neuroclips.models.video_pipeline import set_motion_norm

    cfg = VIDEO_CONFIGS["tiny"]
    with seeded_init(seed):
        unet2d = UNet2DConditionModel(**cfg["unet"])
        vae = AutoencoderKL(**cfg["vae"])
        text_encoder = CLIPTextModel(CLIPTextConfig(**cfg["text_encoder"]))
        adapter = MotionAdapter(**cfg["motion_adapter"])
        controlnet = SparseControlNetModel(**cfg["controlnet"])
    unet = UNetMotionModel.from_unet2d(unet2d, adapter)
    set_motion_norm(unet, motion_norm)
    set_motion_norm(controlnet, motion_norm)
    return VideoNets(unet, unet2d.config, vae, text_encoder, controlnet)


@torch.no_grad()
def encode_videos(vae: AutoencoderKL, clips: torch.Tensor, arch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips (M, 6, 3, S, S) in [0, 1] -> video latents (M, 4, 16, s, s) and keyframe latents (M, 4, s, s), both
    VAE means × scaling factor."""
    from neuroclips.generation.interpolation import interpolate_frames
    from neuroclips.tasks.standin_unclip import latent_means

    def encode(images: torch.Tensor) -> torch.Tensor:
        return latent_means(vae, images) * vae.config.scaling_factor

    videos = interpolate_frames(clips, arch["interpolation"])
    if videos.shape[1] != arch["num_frames"]:
        raise ValueError(
            f"standins video: num_frames={arch['num_frames']}, interpolation gives {videos.shape[1]}."
        )
    latents = encode(videos.flatten(0, 1)).unflatten(0, videos.shape[:2]).permute(0, 2, 1, 3, 4)
    return latents.contiguous(), encode(clips[:, arch["keyframe_frame"]])


def prompt_ids(captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids of caption + the reference suffix, and of the reference negative prompt (the CFG branch)."""
    from neuroclips.generation.video import NEGATIVE_PROMPT, PROMPT_SUFFIX
    from neuroclips.models.generator_loading import clip_tokenizer

    tokenizer = clip_tokenizer()

    def ids(texts: list[str]) -> torch.Tensor:
        return tokenizer(
            texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
        ).input_ids

    return ids([c + PROMPT_SUFFIX for c in captions]), ids([NEGATIVE_PROMPT])


def predict_noise(nets, x_t, t, ids, keyframes, use_control, arch) -> torch.Tensor:
    """The pipeline's noise prediction for latents (B, 4, F, s, s); `use_control` (B,) bools pick SparseCtrl."""
    frames = x_t.shape[2]
    embeds = nets.text_encoder(ids)[0].repeat_interleave(frames, dim=0)
    residuals = {}
    if bool(use_control.any()):
        cond = torch.zeros_like(x_t)
        mask = torch.zeros_like(x_t[:, :1])
        cond[:, :, arch["keyframe_index"]] = keyframes
        mask[:, :, arch["keyframe_index"]] = 1
        down, mid = nets.controlnet(
            x_t,
            t,
            encoder_hidden_states=embeds,
            controlnet_cond=cond,
            conditioning_mask=mask,
            return_dict=False,
        )
        keep = use_control.to(
            x_t.dtype
        )  # a clip without SparseCtrl gets no residual (the pipeline without it)
        gate = keep.repeat_interleave(frames)[:, None, None, None]
        residuals = dict(
            down_block_additional_residuals=[d * gate for d in down], mid_block_additional_residual=mid * gate
        )
    return nets.unet(x_t, t, encoder_hidden_states=embeds, **residuals).sample


def noising_schedule(snr_shift: float = 1.0) -> DDPMScheduler:
    """The forward process of the video pipeline's scheduler (models.video_generator_configs.video_scheduler)."""
    from neuroclips.models.video_generator_configs import video_scheduler

    keys = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas")
    config = video_scheduler(snr_shift)
    return DDPMScheduler(**{k: config[k] for k in keys if k in config})


def fit_video_unet(
    nets, videos, keyframes, captions, arch, *, steps, batch_size, lr, uncond_prob, keyframe_drop, seed
) -> dict:
    """ε-prediction MSE; exactly `steps` AdamW steps (OneCycle) over UNet + motion modules, SparseCtrl, text."""
    noising = noising_schedule(arch.get("snr_shift", 1.0))
    ids, negative = prompt_ids(captions)
    generator = torch.Generator().manual_seed(seed)
    modules = (nets.unet, nets.controlnet, nets.text_encoder)
    params = [p for m in modules for p in m.parameters()]
    fit = FixedStepFit(params, lr=lr, steps=steps, what="video UNet")
    for m in modules:
        m.requires_grad_(True).train()
    for step in range(steps):
        index = torch.randint(0, len(videos), (batch_size,), generator=generator)
        batch_ids = ids[index].clone()
        batch_ids[torch.rand(batch_size, generator=generator) < uncond_prob] = negative[0]
        use_control = torch.rand(batch_size, generator=generator) >= keyframe_drop
        noise = torch.randn(videos[index].shape, generator=generator)
        t = torch.randint(0, noising.config.num_train_timesteps, (batch_size,), generator=generator)
        x_t = noising.add_noise(videos[index], noise, t)
        predicted = predict_noise(nets, x_t, t, batch_ids, keyframes[index], use_control, arch)
        fit.step(step, F.mse_loss(predicted, noise))
    for m in modules:
        m.eval().requires_grad_(False)
    return fit.summary()


@torch.no_grad()
def ablation_losses(pipe, videos, keyframes, captions, arch, *, seed, timesteps=(200, 500, 800)) -> dict:
    """Mean ε MSE over clips and `timesteps` (fixed noise): all conditions, another clip's keyframe, the negative
    prompt instead of the caption, and no SparseCtrl. A condition the model uses raises the loss when taken away."""
    nets = VideoNets(pipe.unet, None, pipe.vae, pipe.text_encoder, pipe.controlnet)
    noising = noising_schedule(arch.get("snr_shift", 1.0))
    ids, negative = prompt_ids(captions)
    generator = torch.Generator().manual_seed(seed)
    n = len(videos)
    shuffled = keyframes.roll(1, 0)
    variants = {
        "all": (ids, keyframes, True),
        "shuffled_keyframe": (ids, shuffled, True),
        "no_caption": (negative.expand(n, -1), keyframes, True),
        "no_sparsectrl": (ids, keyframes, False),
    }
    totals = dict.fromkeys(variants, 0.0)
    for step in timesteps:
        noise = torch.randn(videos.shape, generator=generator)
        t = torch.full((n,), step)
        x_t = noising.add_noise(videos, noise, t)
        for name, (v_ids, v_key, control) in variants.items():
            for i in range(0, n, 8):
                sl = slice(i, i + 8)
                use = torch.full((len(x_t[sl]),), control)
                pred = predict_noise(nets, x_t[sl], t[sl], v_ids[sl], v_key[sl], use, arch)
                totals[name] += float(F.mse_loss(pred, noise[sl], reduction="sum"))
    count = noise.numel() * len(timesteps)
    return {"clips": n, **{f"eps_mse_{k}": v / count for k, v in totals.items()}}
