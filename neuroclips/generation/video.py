"""The NeuroClips video pipeline on diffusers: AnimateDiff v3 + SparseCtrl-RGB with α/β/γ guidance (method.md §7).

* α (blurry video): the 6 blurry frames are resized, interpolated to 16 frames, VAE-encoded and noised into z_T
  (``neuroclips.generation.guidance``); z_T goes in as ``latents``.
* β (keyframe): the keyframe is VAE-encoded and placed at ``keyframe_index`` (default 0, the reference's) of the
  SparseCtrl condition, with mask 1 on that frame only.
* γ (text): prompt = caption + the reference suffix; the reference negative prompt; CFG 8.5, 25 DDIM steps.

``NeuroClipsVideoPipeline`` is a thin subclass of diffusers' ``AnimateDiffSparseControlNetPipeline`` that adds only
what batching and reproducibility need: a per-clip keyframe (the stock pipeline shares one condition across the
batch) and per-clip generators for the keyframe's VAE sample (the stock one draws it from the global RNG,
generation-notes.md D2). Every random draw comes from generators seeded by (seed, clip_index, purpose), so a clip's
video does not depend on batch size, rank count or order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import AnimateDiffPipeline, AnimateDiffSparseControlNetPipeline
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D
from torch import nn

from neuroclips.generation.guidance import initial_latents, plan_alpha, sampling_scheduler
from neuroclips.generation.interpolation import interpolate_frames
from neuroclips.generation.seeding import (
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
MOTION_NORMS = ("per_frame", "all_frames")


class PerFrameGroupNorm(nn.GroupNorm):
    """GroupNorm on (B, C, F, H, W) with statistics per frame, as the reference's motion modules compute them.

    Same parameters and state-dict keys as ``nn.GroupNorm``; 4-D input behaves exactly like ``nn.GroupNorm``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            return super().forward(x)
        b, c, f, h, w = x.shape
        y = super().forward(x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w))
        return y.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)


def set_motion_norm(module: nn.Module, mode: str) -> int:
    """Make every motion module's input GroupNorm per-frame (reference) or all-frames (stock diffusers).

    Returns how many norms were set. Parameters are shared with the replaced norm, so weights stay loaded.
    """
    if mode not in MOTION_NORMS:
        raise ValueError(f"video.motion_norm: expected one of {MOTION_NORMS}, found {mode!r}.")
    cls = PerFrameGroupNorm if mode == "per_frame" else nn.GroupNorm
    count = 0
    for sub in module.modules():
        if isinstance(sub, AnimateDiffTransformer3D):
            old = sub.norm
            new = cls.__new__(cls)
            new.__dict__ = old.__dict__.copy()  # same parameters, eps, groups: only the forward changes
            new._parameters = old._parameters
            sub.norm = new
            count += 1
    return count


class NeuroClipsVideoPipeline(AnimateDiffSparseControlNetPipeline):
    """``AnimateDiffSparseControlNetPipeline`` with per-clip conditioning frames and per-clip VAE-sample generators.

    ``conditioning_frames`` may be a tensor (B, Fc, 3, H, W) in [0, 1]: one set of frames per clip (anything else
    goes to the stock behaviour). ``conditioning_generators``: one generator per clip for the frames' VAE sample;
    or ``conditioning_noise`` (B, Fc, C, h, w): the standard-normal draws of that sample, made by the caller.
    """

    _conditioning_generators: list[torch.Generator] | None = None
    _conditioning_noise: torch.Tensor | None = None

    def __call__(
        self,
        *args,
        conditioning_generators: Sequence[torch.Generator] | None = None,
        conditioning_noise: torch.Tensor | None = None,
        **kwargs,
    ):
        self._conditioning_generators = (
            None if conditioning_generators is None else list(conditioning_generators)
        )
        self._conditioning_noise = conditioning_noise
        try:
            return super().__call__(*args, **kwargs)
        finally:
            self._conditioning_generators = None
            self._conditioning_noise = None

    def prepare_image(self, image, width, height, device, dtype):
        if not (isinstance(image, torch.Tensor) and image.ndim == 5):
            return super().prepare_image(image, width, height, device, dtype)
        if image.min() < 0 or image.max() > 1:
            raise ValueError("video conditioning frames: expected values in [0, 1].")
        b, fc = image.shape[:2]
        frames = image.reshape(b * fc, *image.shape[2:]).to(device=device, dtype=dtype)
        if frames.shape[-2:] != (height, width):
            frames = F.interpolate(frames, size=(height, width), mode="bilinear", align_corners=False)
        if not self.controlnet.config.use_simplified_condition_embedding:
            return frames.reshape(b, fc, *frames.shape[1:]).permute(0, 2, 1, 3, 4)
        dist = self.vae.encode(2 * frames - 1).latent_dist
        if self._conditioning_noise is not None:
            noise = self._conditioning_noise.to(device=device, dtype=dist.mean.dtype)
            latents = dist.mean + dist.std * noise.reshape(dist.mean.shape)
        elif self._conditioning_generators is None:
            latents = dist.sample()  # the stock pipeline's draw (global RNG)
        else:
            if len(self._conditioning_generators) != b:
                raise ValueError(
                    f"conditioning_generators: expected {b} (one per clip), found {len(self._conditioning_generators)}."
                )
            noise = randn_per_clip(
                (fc, *dist.mean.shape[1:]), self._conditioning_generators, device, dist.mean.dtype
            )
            latents = dist.mean + dist.std * noise.reshape(dist.mean.shape)
        latents = latents * self.vae.config.scaling_factor
        return latents.reshape(b, fc, *latents.shape[1:]).permute(0, 2, 1, 3, 4)

    def prepare_sparse_control_conditioning(
        self, conditioning_frames, num_frames, controlnet_frame_indices, device, dtype
    ):
        cond, mask = super().prepare_sparse_control_conditioning(
            conditioning_frames, num_frames, controlnet_frame_indices, device, dtype
        )
        # A batch-1 condition broadcasts over the CFG-doubled latents; a per-clip one must be doubled like them.
        if self.do_classifier_free_guidance and cond.shape[0] > 1:
            cond, mask = torch.cat([cond, cond]), torch.cat([mask, mask])
        return cond, mask

    def without_controlnet(self) -> AnimateDiffPipeline:
        """The plain AnimateDiff pipeline on the same components (the "no keyframe" ablation)."""
        if getattr(self, "_plain", None) is None:
            self._plain = AnimateDiffPipeline(
                vae=self.vae,
                text_encoder=self.text_encoder,
                tokenizer=self.tokenizer,
                unet=self.unet,
                motion_adapter=None,
                scheduler=self.scheduler,
            )
            self._plain.set_progress_bar_config(disable=True)
        self._plain.scheduler = self.scheduler
        return self._plain


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
    seed: int = 12099779162349365895
    per_clip_seed: bool = True  # reference: false (the same seed for every clip)
    # streams: every draw from its own (seed, clip, purpose) generator; reference: the reference script's
    # torch.manual_seed(seed) before every clip, draws in its order (seeding.reference_video_draws)
    seeding: str = "streams"


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
        frames = F.interpolate(
            blurry.flatten(0, 1).float(), size=(size, size), mode="bilinear", align_corners=False
        )
        frames16 = interpolate_frames(frames.unflatten(0, (b, -1)), recipe.interpolation)
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
