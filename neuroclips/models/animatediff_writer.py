"""A diffusers AnimateDiff + SparseCtrl video generator as the three original files the reference loads.

The inverse of what ``neuroclips.models.video_generator`` reads with ``pretrained="local"``, so that the fitted tiny
video stand-in (tasks/standin_video.py) goes through the same strict loaders as the real weights:

* the SD-1.5 DreamBooth single file (RealisticVision): LDM keys, UNet ``model.diffusion_model.*``
  (``unclip_keys.diffusers_to_ldm_key``), VAE ``first_stage_model.*`` (``unclip_writer.ldm_vae_state_dict``),
  text encoder ``cond_stage_model.transformer.text_model.*`` (the prefix diffusers' ``convert_ldm_clip_checkpoint`` removes);
* the motion module file (``v3_sd15_mm.ckpt``) and the SparseCtrl-RGB file (``v3_sd15_sparsectrl_rgb.ckpt``):
  AnimateDiff's own motion-module names, the inverse of diffusers' ``convert_animatediff_checkpoint_to_diffusers``
  (``temporal_transformer`` level, ``attention_blocks.N``, ``norms.N``, ``ff_norm``, ``pos_encoder.pe``).
"""

from __future__ import annotations

import re

import torch
from diffusers import AutoencoderKL
from transformers import CLIPTextModel

from neuroclips.models.unclip_keys import LDM_UNET_PREFIX, diffusers_to_ldm_key
from neuroclips.models.unclip_writer import ldm_vae_state_dict

LDM_TEXT_PREFIX = "cond_stage_model.transformer."
_MOTION_NAMES = {  # diffusers name inside a motion transformer block -> AnimateDiff's
    "attn1": "attention_blocks.0",
    "attn2": "attention_blocks.1",
    "norm1": "norms.0",
    "norm2": "norms.1",
    "norm3": "ff_norm",
}


def animatediff_motion_key(key: str) -> list[str]:
    """AnimateDiff's names of one diffusers motion-module (or SparseCtrl) key; other keys are returned unchanged.

    A block's sinusoidal table (diffusers: ``transformer_blocks.N.pos_embed.pe``, one per block) is stored by
    AnimateDiff in each of the block's two attentions (``attention_blocks.{0,1}.pos_encoder.pe``): two names."""
    m = re.match(r"(.*\.motion_modules\.\d+\.)(.*)", key)
    if m is None:
        return [key]
    head, rest = m[1] + "temporal_transformer.", m[2]
    if p := re.fullmatch(r"(transformer_blocks\.\d+\.)pos_embed\.pe", rest):
        return [f"{head}{p[1]}attention_blocks.{i}.pos_encoder.pe" for i in (0, 1)]
    if b := re.match(r"(transformer_blocks\.\d+\.)(attn1|attn2|norm1|norm2|norm3)(\..*)", rest):
        rest = f"{b[1]}{_MOTION_NAMES[b[2]]}{b[3]}"
    return [head + rest]


def animatediff_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A MotionAdapter's or SparseControlNetModel's state dict in AnimateDiff's original names."""
    out = {}
    for key, value in state.items():
        for name in animatediff_motion_key(key):
            if name in out:
                raise AssertionError(f"animatediff writer: two keys map to {name}.")
            out[name] = value.detach().clone().contiguous()
    return out


def split_motion_unet(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """A UNetMotionModel's state dict -> (the SD-1.5 UNet's keys, the MotionAdapter's keys)."""
    motion = {k: v for k, v in state.items() if ".motion_modules." in k}
    spatial = {k: v for k, v in state.items() if ".motion_modules." not in k}
    return spatial, motion


def dreambooth_state_dict(
    unet_state: dict[str, torch.Tensor], unet_config, vae: AutoencoderKL, text_encoder: CLIPTextModel
) -> dict[str, torch.Tensor]:
    """{LDM key: tensor} of an SD-1.5 single file from the spatial UNet's state dict, the VAE and the text encoder."""
    state = {LDM_UNET_PREFIX + diffusers_to_ldm_key(k, unet_config): v for k, v in unet_state.items()}
    state.update(ldm_vae_state_dict(vae))
    for key, value in text_encoder.state_dict().items():  # transformers >= 5.6 drops the text_model level
        state[LDM_TEXT_PREFIX + (key if key.startswith("text_model.") else f"text_model.{key}")] = value
    expected = len(unet_state) + len(vae.state_dict()) + len(text_encoder.state_dict())
    if len(state) != expected:
        raise AssertionError("dreambooth writer: the key mapping is not one-to-one; check the configs.")
    return {k: v.detach().clone().contiguous() for k, v in state.items()}
