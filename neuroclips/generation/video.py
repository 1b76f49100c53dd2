"""The NeuroClips video pipeline on diffusers: AnimateDiff v3 + SparseCtrl-RGB with α/β/γ guidance (method.md §7).

* α (blurry video): the 6 blurry frames are resized, interpolated to 16 frames, VAE-encoded and noised into z_T
  (``neuroclips.generation.guidance``); z_T goes in as ``latents``.
* β (keyframe): the keyframe is VAE-encoded and placed at ``keyframe_index`` (default 0, the reference's) of the
  SparseCtrl condition, with mask 1 on that frame only.
* γ (text): prompt = caption + the reference suffix; the reference negative prompt; CFG 8.5, 25 DDIM steps.

The pipeline it drives is ``models.video_pipeline.NeuroClipsVideoPipeline`` (built by ``models.video_generator``).
Every random draw comes from generators seeded by (seed, clip_index, purpose), so a clip's
video does not depend on batch size, rank count or order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from neuroclips.generation.guidance import initial_latents, plan_alpha, sampling_scheduler
from neuroclips.generation.interpolation import interpolate_frames
from neuroclips.models.video_pipeline import NeuroClipsVideoPipeline
from neuroclips.utils.seeding import (
    REFERENCE_VIDEO_SEED,
    check_seeding,
    clip_generators,
    randn_per_clip,
    reference_video_draws,
)

# Reference prompt suffix and negative prompt (Animatediff/configs/NeuroClips/control.yaml; paper App. A).
PROMPT_SUFFIX = ", 8k uhd, dslr, soft lighting, high quality, film grain, Fujifilm XT3"
NEGATIVE_PROMPT = (
    "semi-realistic, cgi, 3d, render, sketch, cartoon, drawing, anime, text, close up, cropped, out of frame, "
    "worst quality, low quality, jpeg artifacts, ugly, duplicate, morbid, mutilated, extra fingers, mutated hands, "
    "poorly drawn hands, poorly drawn face, mutation, deformed, blurry, dehydrated, bad anatomy, bad proportions, "
    "extra limbs, cloned face, disfigured, gross proportions, malformed limbs, missing arms, missing legs, "
    "extra arms, extra legs, fused fingers, too many fingers, long neck"
)
# Prompt of the paper's "w/o keyframe (and caption)" ablation (Table 2).
NO_CAPTION_PROMPT = "a smooth video"


@dataclass(frozen=True)
class VideoRecipe:
    """How one clip's video is made. Defaults are the reference's (method.md §7.2)."""

    num_frames: int = 16
    size: int = 256
    steps: int = 25
    guidance_scale: float = 8.5
    alpha_mode: str = "code_t0"
    theta: float = 0.3
    strength: float = 0.3
    interpolation: str = "reference"
    use_keyframe: bool = True
    keyframe_index: int = 0
    sparsectrl_scale: float = 1.0
    use_caption: bool = True
    prompt_suffix: str = PROMPT_SUFFIX
    negative_prompt: str = NEGATIVE_PROMPT
    no_caption_prompt: str = NO_CAPTION_PROMPT
    seed: int = REFERENCE_VIDEO_SEED
    per_clip_seed: bool = True  # reference: false (the same seed for every clip)
    # streams: every draw from its own (seed, clip, purpose) generator; reference: the reference script's
    # torch.manual_seed(seed) before every clip, draws in its order (seeding.reference_video_draws)
    seeding: str = "streams"


def alpha_frames(blurry: torch.Tensor, size: int, interpolation: str) -> torch.Tensor:
    """(B, 6, 3, H, W) blurry frames in [0, 1] -> the (B, 16, 3, size, size) frames α encodes: each resized
    (bilinear), then interpolated to 16 frames (``interpolation``: reference | exact)."""
    frames = F.interpolate(
        blurry.flatten(0, 1).float(), size=(size, size), mode="bilinear", align_corners=False
    )
    return interpolate_frames(frames.unflatten(0, (blurry.shape[0], -1)), interpolation)


def encode_blurry_video(
    pipe,
    frames16: torch.Tensor,
    generators: Sequence[torch.Generator] | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, F, 3, S, S) in [0, 1] -> VAE samples × scaling factor, (B, 4, F, s, s); one VAE call per clip.

    The sample's standard-normal draws come from one generator per clip, or are given as ``noise`` (B, F, C, s, s).
    """
    latents = []
    vae = pipe.vae
    for i, clip in enumerate(frames16):
        dist = vae.encode((2 * clip - 1).to(device=vae.device, dtype=vae.dtype)).latent_dist
        if noise is not None:
            eps = noise[i].to(device=vae.device, dtype=dist.mean.dtype)
        else:
            eps = randn_per_clip(dist.mean.shape, [generators[i]], vae.device, dist.mean.dtype)[0]
        latents.append((dist.mean + dist.std * eps) * vae.config.scaling_factor)
    return torch.stack(latents).permute(0, 2, 1, 3, 4)


@torch.no_grad()
def generate_videos(
    pipe: NeuroClipsVideoPipeline,
    recipe: VideoRecipe,
    clip_indices: Sequence[int] | torch.Tensor,
    blurry: torch.Tensor | None,
    keyframes: torch.Tensor | None,
    captions: Sequence[str] | None,
) -> torch.Tensor:
    """Videos (B, num_frames, 3, size, size) in [0, 1] for a batch of clips.

    ``blurry`` (B, 6, 3, H, W) in [0, 1] (needed unless ``alpha_mode="none"``), ``keyframes`` (B, 3, H, W) in
    [0, 1] (needed when ``use_keyframe``), ``captions`` (B strings; needed when ``use_caption``).
    """
    indices = (
        clip_indices.tolist() if isinstance(clip_indices, torch.Tensor) else [int(i) for i in clip_indices]
    )
    b, size, device = len(indices), recipe.size, pipe.unet.device
    dtype = pipe.unet.dtype

    def gens(purpose: str) -> list[torch.Generator]:
        return clip_generators(recipe.seed, indices, purpose, recipe.per_clip_seed)

    check_seeding("video.seeding", recipe.seeding)
    latent_size = size // pipe.vae_scale_factor
    reference = None
    if (
        recipe.seeding == "reference"
    ):  # every clip re-seeded with the same literal: the same draws for all clips
        shape = (pipe.vae.config.latent_channels, latent_size, latent_size)
        draws = [reference_video_draws(recipe.seed, recipe.num_frames, shape, device) for _ in indices]
        reference = {key: torch.stack([d[key] for d in draws]) for key in draws[0]}
        noise = reference["alpha_noise"].to(dtype)
    else:
        noise = randn_per_clip(
            (4, recipe.num_frames, latent_size, latent_size), gens("alpha_noise"), device, dtype
        )
    plan = plan_alpha(pipe.scheduler, recipe.steps, recipe.alpha_mode, recipe.theta, recipe.strength)
    z_blurry = None
    if recipe.alpha_mode != "none":
        if blurry is None:
            raise ValueError(
                f"video alpha_mode={recipe.alpha_mode!r} needs batch['inputs']['blurry']; none given."
            )
        frames16 = alpha_frames(blurry, size, recipe.interpolation)
        if frames16.shape[1] != recipe.num_frames:
            raise ValueError(
                f"video num_frames={recipe.num_frames}, but interpolation gives {frames16.shape[1]}."
            )
        if reference is None:
            z_blurry = encode_blurry_video(pipe, frames16.clamp(0, 1), gens("blurry_vae"))
        else:
            z_blurry = encode_blurry_video(pipe, frames16.clamp(0, 1), noise=reference["blurry_vae"])
        z_blurry = z_blurry.to(dtype)
    latents = initial_latents(plan, z_blurry, noise)

    if recipe.use_caption:
        if captions is None or len(captions) != b:
            raise ValueError(f"video use_caption=true needs one caption per clip ({b}); found {captions!r}.")
        prompts = [c + recipe.prompt_suffix for c in captions]
    else:
        prompts = [recipe.no_caption_prompt] * b
    common = dict(
        prompt=prompts,
        negative_prompt=[recipe.negative_prompt] * b,
        num_frames=recipe.num_frames,
        height=size,
        width=size,
        num_inference_steps=recipe.steps,
        guidance_scale=recipe.guidance_scale,
        latents=latents,
        output_type="pt",
    )
    original = pipe.scheduler
    pipe.scheduler = sampling_scheduler(original, plan)
    try:
        if recipe.use_keyframe:
            if keyframes is None:
                raise ValueError("video use_keyframe=true needs batch['inputs']['keyframe']; none given.")
            draws = (
                dict(conditioning_generators=gens("keyframe_vae"))
                if reference is None
                else dict(conditioning_noise=reference["keyframe_vae"][:, None])
            )
            out = pipe(
                **common,
                conditioning_frames=keyframes[:, None].clamp(0, 1),
                controlnet_frame_indices=[recipe.keyframe_index],
                controlnet_conditioning_scale=float(recipe.sparsectrl_scale),
                **draws,
            )
        else:
            out = pipe.without_controlnet()(**common)
    finally:
        pipe.scheduler = original
    return out.frames.float().clamp(0, 1)
