"""Keyframes from predicted CLIP tokens with MindEye2's SDXL-unCLIP (method.md §5, generation-notes.md §A).

The recipe of the reference (sgm ``EulerEDMSampler`` + ``VanillaCFG(5)``, 38 steps) as a short loop on diffusers'
``EulerDiscreteScheduler`` with explicit timesteps ⌊999 − k·999/38⌋:

* context = the prior's 256×1664 tokens; the unconditional context is fresh standard-normal tokens per image
  (not zeros); batch order [uncond, cond];
* vector conditioning: time ids [orig_h, orig_w, crop_top, crop_left] = [768, 768, 0, 0] for both branches
  ("text_time" route with a zero-width text embedding);
* start x_T = z + σ_max·(n + 0.04·s): base latent z, noise n, one offset scalar s per image (reference quirk);
  the scheduler's ``init_noise_sigma`` is *not* applied;
* decode in fp32, map with clamp(0.8·x + 0.2) (MindEye2's convention), resize 768 → 256 (bilinear; antialiased
  unless ``resize_antialias=false``, the reference's ``transforms.Resize`` on tensors under torchvision 0.16).

``init_from_blurry`` (the paper's β-guidance text; the released code does not do it): img2img from the first
blurry frame, starting at step ⌊steps·(1 − strength)⌋ from its VAE latent noised to that step's σ.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel

from neuroclips.utils.seeding import ReferenceRNG, check_seeding, clip_generators, randn_per_clip

OUTPUT_MAPPINGS = ("mindeye2", "standard")


def unclip_timesteps(num_steps: int = 38, num_train_timesteps: int = 1000) -> list[int]:
    """sgm's LegacyDDPM spacing as NeuroClips runs it: ⌊(T−1) − k·(T−1)/steps⌋, k = 0..steps−1 (last is 26 for 38)."""
    last = num_train_timesteps - 1
    return [int(last - k * last / num_steps) for k in range(num_steps)]


@dataclass(frozen=True)
class KeyframeRecipe:
    """How a keyframe is sampled. Defaults are the reference's."""

    steps: int = 38
    guidance_scale: float = 5.0
    gen_size: int = 768  # sampled at this size
    out_size: int = 256  # written at this size
    original_size: tuple[int, int] = (768, 768)
    crop_top_left: tuple[int, int] = (0, 0)
    offset_noise: float = 0.04
    uncond: str = "randn"  # randn (reference: random tokens) | zeros
    output_mapping: str = "mindeye2"  # mindeye2: clamp(0.8x + 0.2) | standard: (x + 1) / 2
    init_from_blurry: bool = False
    blurry_strength: float = 0.75  # img2img strength when init_from_blurry (fraction of steps that run)
    unet_autocast: str | None = None  # reference: float16 autocast around the UNet on GPUs; null = off
    resize_antialias: bool = True  # reference: false (transforms.Resize on tensors, torchvision 0.16 default)
    seed: int = 0
    per_clip_seed: bool = True
    seeding: str = (
        "streams"  # streams | reference (draws from a ReferenceRNG passed by the caller, in its order)
    )


def vector_time_ids(recipe: KeyframeRecipe, batch: int, device, dtype) -> torch.Tensor:
    """(batch, 4) = [orig_h, orig_w, crop_top, crop_left]; the UNet embeds each with a 256-d cos|sin sinusoid."""
    ids = [*recipe.original_size, *recipe.crop_top_left]
    return torch.tensor([ids] * batch, device=device, dtype=dtype)


def _autocast(device: torch.device, dtype_name: str | None):
    if not dtype_name or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=getattr(torch, dtype_name))


@torch.no_grad()
def sample_keyframes(
    unet: UNet2DConditionModel,
    vae: AutoencoderKL,
    scheduler: EulerDiscreteScheduler,
    recipe: KeyframeRecipe,
    tokens: torch.Tensor,
    clip_indices: Sequence[int] | torch.Tensor,
    blurry_first_frame: torch.Tensor | None = None,
    rng: ReferenceRNG | None = None,
) -> torch.Tensor:
    """Keyframes (B, 3, out_size, out_size) in [0, 1] from predicted tokens (B, T, D).

    ``recipe.seeding="reference"`` takes the draws from ``rng`` in the order of the reference's ``unclip_recon``
    for each clip in turn: base latent (CPU), unconditional tokens, noise, offset scalar (device).
    """
    if recipe.output_mapping not in OUTPUT_MAPPINGS:
        raise ValueError(
            f"keyframe output_mapping: expected one of {OUTPUT_MAPPINGS}, found {recipe.output_mapping!r}."
        )
    if recipe.uncond not in ("randn", "zeros"):
        raise ValueError(f"keyframe uncond: expected 'randn' or 'zeros', found {recipe.uncond!r}.")
    indices = (
        clip_indices.tolist() if isinstance(clip_indices, torch.Tensor) else [int(i) for i in clip_indices]
    )
    b, device = len(indices), unet.device
    dtype = unet.dtype
    tokens = tokens.to(device=device, dtype=dtype)

    def gens(purpose: str) -> list[torch.Generator]:
        return clip_generators(recipe.seed, indices, purpose, recipe.per_clip_seed)

    check_seeding("keyframe.seeding", recipe.seeding)
    vae_factor = 2 ** (len(vae.config.block_out_channels) - 1)
    latent_shape = (unet.config.in_channels, recipe.gen_size // vae_factor, recipe.gen_size // vae_factor)
    if recipe.seeding == "reference":
        if rng is None:
            raise ValueError("keyframe seeding=reference needs the caller's ReferenceRNG (rng=...).")
        draws = {"base": [], "uncond": [], "noise": [], "offset": []}
        for _ in indices:  # utils.unclip_recon, one clip after the other
            draws["base"].append(rng.randn((1, *latent_shape), on_cpu=True)[0])
            draws["uncond"].append(rng.randn((1, *tokens.shape[1:]))[0])
            draws["noise"].append(rng.randn((1, *latent_shape))[0])
            draws["offset"].append(rng.randn((1,)).reshape(1, 1, 1))
        reference = {key: torch.stack(value) for key, value in draws.items()}
    else:
        reference = None
    if recipe.uncond == "randn":
        if reference is not None:
            uncond = reference["uncond"].to(dtype)
        else:
            uncond = randn_per_clip(tokens.shape[1:], gens("keyframe_uncond"), device, dtype)
    else:
        uncond = torch.zeros_like(tokens)

    scheduler.set_timesteps(
        timesteps=unclip_timesteps(recipe.steps, scheduler.config.num_train_timesteps), device=device
    )
    sigmas = scheduler.sigmas
    start = 0
    if reference is not None:
        noise = reference["noise"]
    else:
        noise = randn_per_clip(latent_shape, gens("keyframe_noise"), device, torch.float32)
    if recipe.init_from_blurry:
        if blurry_first_frame is None:
            raise ValueError(
                "keyframe init_from_blurry=true needs the blurry video (batch['inputs']['blurry'])."
            )
        start = int(recipe.steps * (1.0 - recipe.blurry_strength))
        if not 0 <= start < recipe.steps:
            raise ValueError(
                f"keyframe blurry_strength: expected a value in (0, 1], found {recipe.blurry_strength}."
            )
        frame = F.interpolate(
            blurry_first_frame.float(), size=(recipe.gen_size,) * 2, mode="bilinear", align_corners=False
        )
        with torch.autocast(device.type, enabled=False):
            dist = vae.float().encode((2 * frame - 1).to(device)).latent_dist
        base = dist.mean * vae.config.scaling_factor
        x = base + sigmas[start] * noise
    else:
        if reference is not None:
            base, offset = reference["base"], reference["offset"]
        else:
            base = randn_per_clip(latent_shape, gens("keyframe_base"), device, torch.float32)
            offset = randn_per_clip((1, 1, 1), gens("keyframe_offset"), device, torch.float32)
        x = base + sigmas[0] * (noise + recipe.offset_noise * offset)
    scheduler.set_begin_index(start)

    context = torch.cat([uncond, tokens])
    time_ids = vector_time_ids(recipe, 2 * b, device, dtype)
    no_text = torch.zeros(2 * b, 0, device=device, dtype=dtype)
    for t in scheduler.timesteps[start:]:
        model_in = scheduler.scale_model_input(torch.cat([x, x]), t)
        with _autocast(device, recipe.unet_autocast):
            eps = unet(
                model_in.to(dtype),
                t,
                encoder_hidden_states=context,
                added_cond_kwargs={"text_embeds": no_text, "time_ids": time_ids},
            ).sample.float()
        eps_uncond, eps_cond = eps.chunk(2)
        eps = eps_uncond + recipe.guidance_scale * (eps_cond - eps_uncond)
        x = scheduler.step(eps, t, x).prev_sample
    with torch.autocast(device.type, enabled=False):  # the reference decodes in fp32
        decoded = vae.decode((x / vae.config.scaling_factor).to(vae.dtype)).sample.float()
    if recipe.output_mapping == "mindeye2":
        images = (0.8 * decoded + 0.2).clamp(0, 1)
    else:
        images = ((decoded + 1) / 2).clamp(0, 1)
    if images.shape[-1] != recipe.out_size:
        images = F.interpolate(
            images,
            size=(recipe.out_size,) * 2,
            mode="bilinear",
            antialias=recipe.resize_antialias,
            align_corners=False,
        )
    return images.clamp(0, 1)
