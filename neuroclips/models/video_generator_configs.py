"""Architecture and noise-schedule numbers of the frozen video generator (AnimateDiff v3 + SparseCtrl-RGB on SD-1.5),
per size (``paper``, ``tiny``), written from generation-notes.md §B.3; ``models.video_generator`` builds the
pipeline from them. Plain data and one schedule function, so fits and tests read them without building anything.
"""

from __future__ import annotations

import math

import torch

from neuroclips.models.generator_loading import TINY_SHARED_VAE

SD15_TEXT_ENCODER = dict(  # CLIP ViT-L/14 text tower (SD-1.5 / RealisticVision)
    vocab_size=49408,
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    projection_dim=768,
    bos_token_id=49406,
    eos_token_id=49407,
    pad_token_id=1,
)
VIDEO_CONFIGS = {
    "paper": dict(
        unet=dict(
            sample_size=64,
            in_channels=4,
            out_channels=4,
            layers_per_block=2,
            cross_attention_dim=768,
            attention_head_dim=8,
            block_out_channels=[320, 640, 1280, 1280],
            down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
            up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
        ),
        vae=dict(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            layers_per_block=2,
            sample_size=512,
            block_out_channels=[128, 256, 512, 512],
            down_block_types=["DownEncoderBlock2D"] * 4,
            up_block_types=["UpDecoderBlock2D"] * 4,
            scaling_factor=0.18215,
        ),
        text_encoder=SD15_TEXT_ENCODER,
        motion_adapter=dict(
            block_out_channels=[320, 640, 1280, 1280],
            motion_layers_per_block=2,
            motion_transformer_layers_per_block=1,
            motion_mid_block_layers_per_block=1,
            motion_transformer_layers_per_mid_block=1,
            motion_num_attention_heads=8,
            motion_norm_num_groups=32,
            motion_max_seq_length=32,
            use_motion_mid_block=False,
            conv_in_channels=None,
        ),
        controlnet=dict(
            in_channels=4,
            conditioning_channels=4,
            use_simplified_condition_embedding=True,
            concat_conditioning_mask=True,
            block_out_channels=[320, 640, 1280, 1280],
            down_block_types=["CrossAttnDownBlockMotion"] * 3 + ["DownBlockMotion"],
            layers_per_block=2,
            cross_attention_dim=768,
            attention_head_dim=8,
            transformer_layers_per_block=1,
            temporal_transformer_layers_per_block=1,
            motion_num_attention_heads=8,
            motion_max_seq_length=32,
            norm_num_groups=32,
            norm_eps=1e-5,
            use_linear_projection=False,
            global_pool_conditions=False,
            controlnet_conditioning_channel_order="rgb",
        ),
    ),
    # Tiny: the same classes and block kinds, widths cut for a CPU. Two speed choices, measured on the fitted
    # stand-in (experiments/simulated_benchmark/video_standin.md): an f4 VAE (32 px -> 8 x 8 latents; the paper's
    # is f8, 256 px -> 32 x 32) and the UNet's (and SparseCtrl's) attention on the lower level only, so a training
    # step of two 16-frame clips takes 0.13 s instead of 0.30 s and the fit affords four times the steps.
    "tiny": dict(
        unet=dict(
            sample_size=8,  # latent side: 32 px / 4
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            cross_attention_dim=16,
            attention_head_dim=4,
            block_out_channels=[16, 32],
            norm_num_groups=4,
            down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
            up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"],
        ),
        vae=dict(TINY_SHARED_VAE, scaling_factor=0.18215),
        text_encoder=dict(
            vocab_size=49408,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407,
        ),
        motion_adapter=dict(
            block_out_channels=[16, 32],
            motion_layers_per_block=1,
            motion_norm_num_groups=4,
            motion_num_attention_heads=2,
            motion_max_seq_length=32,
            use_motion_mid_block=False,  # v3 has no mid-block motion module (as at paper scale)
        ),
        controlnet=dict(
            in_channels=4,
            conditioning_channels=4,
            use_simplified_condition_embedding=True,
            concat_conditioning_mask=True,
            block_out_channels=[16, 32],
            layers_per_block=1,
            down_block_types=["DownBlockMotion", "CrossAttnDownBlockMotion"],
            cross_attention_dim=16,
            attention_head_dim=4,
            norm_num_groups=4,
            motion_num_attention_heads=2,
            conditioning_embedding_out_channels=[8, 16],
        ),
    ),
}
# Reference DDIM (configs/inference/inference-v3.yaml): linear β, steps_offset 1, no clipping, η = 0.
VIDEO_SCHEDULER = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="linear",
    steps_offset=1,
    clip_sample=False,
    set_alpha_to_one=True,
    timestep_spacing="leading",
    prediction_type="epsilon",
)


def video_scheduler(snr_shift: float = 1.0) -> dict:
    """The video generator's DDIM config: the reference's (``VIDEO_SCHEDULER``) when ``snr_shift`` is 1; otherwise
    every timestep's signal-to-noise ratio ᾱ/(1 − ᾱ) multiplied by ``snr_shift``, given as ``trained_betas``.

    Why a shift for a smaller latent: α (the blurry video) steers the video through the latent's coarse content, its
    layout and colours, which averages over the latent's h × w positions, so at a given timestep its SNR grows with
    the latent's area. The paper's video latents are 32 × 32 (256 px, f8), the tiny generator's 8 × 8 (32 px, f4):
    at the same t the tiny one keeps 16 times less of the blurry video's layout, and ``snr_shift=16`` gives back the
    paper's ratio (the resolution shift of Hoogeboom et al. 2023, "simple diffusion", in the other direction). The
    tiny scale's 4 DDIM steps also start α at t = 751 instead of 961 (``scale.gen.video.steps``), a separate change.
    Measured in experiments/simulated_benchmark/end_to_end.md and video_standin.md.
    """
    if snr_shift <= 0:
        raise ValueError(f"scale.gen.video.snr_shift: expected a positive number, found {snr_shift!r}.")
    if snr_shift == 1:
        return dict(VIDEO_SCHEDULER)
    c = VIDEO_SCHEDULER
    # on the CPU even while the pipeline is built on the meta device (shape checks): these are config numbers
    f64 = dict(dtype=torch.float64, device="cpu")
    betas = torch.linspace(c["beta_start"], c["beta_end"], c["num_train_timesteps"], **f64)
    alphas_cumprod = torch.cumprod(1 - betas, 0)
    shifted = torch.sigmoid(torch.logit(alphas_cumprod) + math.log(snr_shift))
    previous = torch.cat([torch.ones(1, **f64), shifted[:-1]])
    return dict(VIDEO_SCHEDULER, trained_betas=(1 - shifted / previous).tolist())
