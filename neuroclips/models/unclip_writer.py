"""A diffusers unCLIP UNet + VAE as one state dict in MindEye2's ``unclip6`` (sgm / LDM) layout.

The inverse of ``neuroclips.models.unclip_keys``: the fitted tiny unCLIP stand-in (tasks/standin_unclip.py) is saved
this way, so that ``build_unclip(pretrained="local", unclip_file=...)`` reads it through the same strict loader as
the real ``unclip6_epoch0_step110000.ckpt``. UNet keys: ``model.diffusion_model.`` + ``diffusers_to_ldm_key``. VAE
keys: ``first_stage_model.`` + the LDM VAE names that diffusers' own ``convert_ldm_vae_checkpoint`` reads (its
mid-block attention as 1×1 convolutions, as in sgm's ``AttnBlock``).
"""

from __future__ import annotations

import re

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from neuroclips.models.unclip_keys import LDM_UNET_PREFIX, LDM_VAE_PREFIX, diffusers_to_ldm_key

_VAE_ATTENTION = {  # diffusers mid-block Attention child -> sgm AttnBlock child
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}


def diffusers_to_ldm_vae_key(key: str, num_up_blocks: int) -> str:
    """The LDM name of one diffusers ``AutoencoderKL`` key (without ``first_stage_model.``)."""
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    fixed = DIFFUSERS_TO_LDM_MAPPING["vae"]  # conv_in/out, norm_out, quant convs
    if key in fixed:
        return fixed[key]
    key = key.replace("conv_shortcut", "nin_shortcut")
    if m := re.match(r"(encoder)\.down_blocks\.(\d+)\.resnets\.(.+)", key):
        return f"{m[1]}.down.{m[2]}.block.{m[3]}"
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.+)", key):
        return f"encoder.down.{m[1]}.downsample.{m[2]}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(.+)", key):
        return f"decoder.up.{num_up_blocks - 1 - int(m[1])}.block.{m[2]}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.+)", key):
        return f"decoder.up.{num_up_blocks - 1 - int(m[1])}.upsample.{m[2]}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)", key):
        if m[2] in _VAE_ATTENTION:
            return f"{m[1]}.mid.attn_1.{_VAE_ATTENTION[m[2]]}.{m[3]}"
    raise KeyError(f"VAE key {key!r} has no LDM counterpart in this mapping")


def ldm_vae_state_dict(vae: AutoencoderKL) -> dict[str, torch.Tensor]:
    """{``first_stage_model.`` + LDM key: tensor} of an AutoencoderKL, as LDM / sgm single files hold it."""
    state = {}
    num_up = len(vae.config.up_block_types)
    for key, value in vae.state_dict().items():
        ldm = diffusers_to_ldm_vae_key(key, num_up)
        if ".attn_1." in ldm and ldm.endswith(".weight") and value.dim() == 2:
            value = value[:, :, None, None]  # Linear -> 1×1 Conv2d, what sgm's AttnBlock stores
        state[LDM_VAE_PREFIX + ldm] = value.detach().clone()
    return state


def unclip_state_dict(unet: UNet2DConditionModel, vae: AutoencoderKL) -> dict[str, torch.Tensor]:
    """{sgm key: tensor} of both nets, as a MindEye2 unclip6 file's ``state_dict`` holds them."""
    state = {
        LDM_UNET_PREFIX + diffusers_to_ldm_key(k, unet.config): v.detach().clone()
        for k, v in unet.state_dict().items()
    }
    state.update(ldm_vae_state_dict(vae))
    if len(state) != len(unet.state_dict()) + len(vae.state_dict()):
        raise AssertionError(
            "unclip writer: the key mapping is not one-to-one; check the UNet and VAE configs."
        )
    return state
