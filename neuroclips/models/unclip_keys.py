"""MindEye2 ``unclip6`` checkpoint (sgm / LDM layout) -> diffusers ``UNet2DConditionModel`` and ``AutoencoderKL``.

The UNet mapping is written out structurally from the diffusers config (levels, ``layers_per_block``, which levels
have attention): every diffusers key has exactly one LDM key. ``load_unclip_unet`` reports coverage (keys covered,
model keys missing from the file, UNet keys in the file that nothing uses, shape mismatches) and refuses to load
unless coverage is complete, so a wrong file or config can never load partially. At real size the mapping covers
1680/1680 keys (generation-notes.md §A.2; checked in tests on the meta device).

The vector conditioning ``label_emb.0.{0,2}`` maps to ``add_embedding.linear_{1,2}`` ("text_time" route) or
``class_embedding.linear_{1,2}`` ("projection" route); both give identical outputs.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

log = logging.getLogger(__name__)

LDM_UNET_PREFIX = "model.diffusion_model."
LDM_VAE_PREFIX = "first_stage_model."

_RESNET = {  # diffusers ResnetBlock2D child -> sgm ResBlock child
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_FIXED = {
    "conv_in": "input_blocks.0.0",
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "class_embedding.linear_1": "label_emb.0.0",
    "class_embedding.linear_2": "label_emb.0.2",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}


def _resnet(rest: str) -> str:
    child, _, tail = rest.partition(".")
    if child not in _RESNET:
        raise KeyError(f"unknown ResNet child {child!r}")
    return f"{_RESNET[child]}.{tail}"


def diffusers_to_ldm_key(key: str, config) -> str:
    """The sgm/LDM name of one diffusers UNet key (without the ``model.diffusion_model.`` prefix)."""
    per_level = config.layers_per_block
    if not isinstance(per_level, int):
        raise ValueError(f"unclip UNet layers_per_block: expected one int, found {per_level!r}.")
    up_has_attn = [t.startswith("CrossAttn") for t in config.up_block_types]
    for prefix, ldm in _FIXED.items():
        if key.startswith(prefix + "."):
            return ldm + key[len(prefix) :]
    if m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions|downsamplers)\.(\d+)\.(.+)", key):
        level, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        base = 1 + level * (per_level + 1)
        if kind == "resnets":
            return f"input_blocks.{base + j}.0.{_resnet(rest)}"
        if kind == "attentions":
            return f"input_blocks.{base + j}.1.{rest}"
        return f"input_blocks.{base + per_level}.0.op.{rest.removeprefix('conv.')}"
    if m := re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)", key):
        kind, j, rest = m[1], int(m[2]), m[3]
        return f"middle_block.{2 * j}.{_resnet(rest)}" if kind == "resnets" else f"middle_block.1.{rest}"
    if m := re.match(r"up_blocks\.(\d+)\.(resnets|attentions|upsamplers)\.(\d+)\.(.+)", key):
        u, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        base = u * (per_level + 1)
        if kind == "resnets":
            return f"output_blocks.{base + j}.0.{_resnet(rest)}"
        if kind == "attentions":
            return f"output_blocks.{base + j}.1.{rest}"
        return f"output_blocks.{base + per_level}.{2 if up_has_attn[u] else 1}.{rest}"
    raise KeyError(f"unclip UNet key {key!r} has no LDM counterpart in this mapping")


def unclip_key_map(unet: UNet2DConditionModel) -> dict[str, str]:
    """{LDM key (with ``model.diffusion_model.``): diffusers key} for every key of ``unet``'s state dict."""
    mapping = {LDM_UNET_PREFIX + diffusers_to_ldm_key(k, unet.config): k for k in unet.state_dict()}
    if len(mapping) != len(unet.state_dict()):
        raise AssertionError("unclip key map is not one-to-one; check the UNet config.")
    return mapping


@dataclass
class CoverageReport:
    model_keys: int
    covered: int
    missing: list[str] = field(default_factory=list)  # model keys with no tensor in the file
    unused: list[str] = field(default_factory=list)  # file keys under the prefix that map to nothing
    shape_mismatches: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.missing or self.unused or self.shape_mismatches) and self.covered == self.model_keys

    def summary(self) -> str:
        def head(items):
            return ", ".join(items[:5]) + (" ..." if len(items) > 5 else "")

        return (
            f"{self.covered}/{self.model_keys} keys covered, {len(self.missing)} missing [{head(self.missing)}], "
            f"{len(self.unused)} unused [{head(self.unused)}], "
            f"{len(self.shape_mismatches)} shape mismatches [{head(self.shape_mismatches)}]"
        )


def map_unclip_unet(
    unet: UNet2DConditionModel, state: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], CoverageReport]:
    """Rename the file's UNet tensors to diffusers keys and report coverage (loads nothing)."""
    mapping = unclip_key_map(unet)
    expected = unet.state_dict()
    converted, report = {}, CoverageReport(model_keys=len(expected), covered=0)
    for ldm_key, diffusers_key in mapping.items():
        if ldm_key not in state:
            report.missing.append(diffusers_key)
            continue
        tensor = state[ldm_key]
        if tuple(tensor.shape) != tuple(expected[diffusers_key].shape):
            report.shape_mismatches.append(
                f"{ldm_key} {tuple(tensor.shape)} vs {diffusers_key} {tuple(expected[diffusers_key].shape)}"
            )
            continue
        converted[diffusers_key] = tensor
        report.covered += 1
    report.unused = sorted(k for k in state if k.startswith(LDM_UNET_PREFIX) and k not in mapping)
    return converted, report


def load_unclip_unet(unet: UNet2DConditionModel, state: dict[str, torch.Tensor], source: str = "state dict"):
    """Load the unclip6 UNet weights into ``unet``; raise unless every key is covered with the right shape."""
    converted, report = map_unclip_unet(unet, state)
    log.info("unclip6 UNet from %s: %s", source, report.summary())
    if not report.complete:
        raise ValueError(
            f"{source}: the unclip6 UNet does not match gen.keyframe's UNet config: {report.summary()}."
        )
    unet.load_state_dict(converted, strict=True)
    return report


def load_unclip_vae(vae: AutoencoderKL, state: dict[str, torch.Tensor], source: str = "state dict") -> None:
    """Load the SDXL VAE (``first_stage_model.*``) with diffusers' own LDM-VAE converter; strict."""
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    vae_state = {k: v for k, v in state.items() if k.startswith(LDM_VAE_PREFIX)}
    if not vae_state:
        raise ValueError(f"{source}: expected VAE keys under {LDM_VAE_PREFIX!r}, found none.")
    converted = convert_ldm_vae_checkpoint(vae_state, vae.config)
    missing, unexpected = vae.load_state_dict(converted, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{source}: the unclip6 VAE does not match gen.keyframe's VAE config: "
            f"{len(missing)} missing {missing[:5]}, {len(unexpected)} unexpected {unexpected[:5]}."
        )
