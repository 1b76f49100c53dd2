"""The frozen keyframe generator: MindEye2's unclip6 (SDXL-unCLIP conditioned on 256 OpenCLIP-bigG tokens).

A diffusers ``UNet2DConditionModel`` ("text_time" route: the 1024-d vector = sinusoids of [orig_h, orig_w, crop_top,
crop_left]) with the SD VAE and an Euler scheduler. Architecture hyperparameters from generation-notes.md §A.2.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel

from neuroclips.models.generator_loading import (
    TINY_SHARED_VAE,
    building_on_meta,
    check_choice,
    load_checkpoint_dict,
    seeded_init,
)

UNCLIP_CONFIGS = {
    "paper": dict(
        unet=dict(
            sample_size=96,
            in_channels=4,
            out_channels=4,
            layers_per_block=2,
            down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
            up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
            block_out_channels=[320, 640, 1280],
            transformer_layers_per_block=[1, 2, 10],
            attention_head_dim=[5, 10, 20],
            use_linear_projection=True,
            cross_attention_dim=1664,
            addition_embed_type="text_time",
            addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=1024,
        ),
        vae=dict(  # the SDXL VAE stored in the unclip6 file (first_stage_model.*)
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            layers_per_block=2,
            sample_size=1024,
            block_out_channels=[128, 256, 512, 512],
            down_block_types=["DownEncoderBlock2D"] * 4,
            up_block_types=["UpDecoderBlock2D"] * 4,
            scaling_factor=0.13025,
            force_upcast=True,
        ),
    ),
    # Tiny: an f4 VAE (32 px -> 8 x 8 latents): the fitted stand-in draws closer keyframes (PixCorr 0.48 against
    # 0.33 with f2) and fits faster (experiments/simulated_benchmark/unclip_standin.md).
    "tiny": dict(
        unet=dict(
            sample_size=8,  # latent side: 32 px / 4 (the tiny VAE is f4)
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
            up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"],
            block_out_channels=[16, 32],
            transformer_layers_per_block=[1, 2],
            attention_head_dim=[2, 4],
            use_linear_projection=True,
            cross_attention_dim=32,
            norm_num_groups=4,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=32,
        ),
        vae=dict(TINY_SHARED_VAE, scaling_factor=0.13025),
    ),
}
# sgm LegacyDDPMDiscretization ("linear" in sgm = "scaled_linear" in diffusers), ε-prediction.
UNCLIP_SCHEDULER = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="epsilon",
    use_karras_sigmas=False,
    final_sigmas_type="zero",
    interpolation_type="linear",
)


@dataclass
class UnclipComponents:
    unet: UNet2DConditionModel
    vae: AutoencoderKL
    scheduler: EulerDiscreteScheduler
    weights: str = (
        "random"  # where the nets' weights came from: "random" or the unclip6 file read (reports say so)
    )


def unclip_configs(size: str, context_dim: int | None = None) -> dict:
    check_choice("scale.gen.size", size, UNCLIP_CONFIGS)
    cfg = copy.deepcopy(UNCLIP_CONFIGS[size])
    if context_dim is not None:
        cfg["unet"]["cross_attention_dim"] = int(context_dim)
    return cfg


def build_unclip(
    pretrained: str = "random",
    size: str = "tiny",
    context_dim: int | None = None,
    unclip_file: str | None = None,
    trust_pickle: bool = False,
    init_seed: int = 0,
) -> UnclipComponents:
    """unclip6 UNet + SDXL VAE + Euler scheduler; ``local`` reads both nets from the unclip6 Lightning file."""
    from neuroclips.models.unclip_keys import load_unclip_unet, load_unclip_vae

    check_choice("scale.pretrained", pretrained, ("random", "local"))
    cfg = unclip_configs(size, context_dim)
    with seeded_init(init_seed):
        unet = UNet2DConditionModel(**cfg["unet"])
        vae = AutoencoderKL(**cfg["vae"])
    if pretrained == "local" and not building_on_meta():
        state = load_checkpoint_dict(
            unclip_file, "scale.gen.keyframe.unclip_file", trust_pickle, "scale.gen.keyframe.trust_pickle"
        )
        load_unclip_unet(unet, state, source=str(unclip_file))
        load_unclip_vae(vae, state, source=str(unclip_file))
    for module in (unet, vae):
        module.requires_grad_(False).eval()
    with torch.device("cpu"):  # scheduler tables are data, also in dry runs on the meta device
        scheduler = EulerDiscreteScheduler(**UNCLIP_SCHEDULER)
    weights = str(unclip_file) if pretrained == "local" else "random"
    return UnclipComponents(unet=unet, vae=vae, scheduler=scheduler, weights=weights)
