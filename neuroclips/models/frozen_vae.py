"""Frozen SD-VAE (KL-f8) used as the PR target encoder and as the decoder of predicted latents.

Paper scale: the SD image-variations VAE of MindEye2 (`sd_image_var_autoenc.pth`: a diffusers
`AutoencoderKL` state dict, channels [128, 256, 512, 512], 2 layers per block, 4 latent channels).
Tiny scale: a small `AutoencoderKL` fitted to the simulated frames by `stage=standins`
(`neuroclips/tasks/standins.py`) and saved with `save_pretrained`; loaded here by path.

Targets follow the reference: latent = encode(2·x − 1).latent_dist.mode() × 0.18215 for frames x in [0, 1];
decoding inverts it: clamp(decode(latent / 0.18215) / 2 + 0.5, 0, 1).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from torch import Tensor, nn

from neuroclips.errors import ConfigError
from neuroclips.utils.weights import MissingWeightsError, read_weight_file

SD_LATENT_SCALE = 0.18215  # SD-1.x VAE scaling factor, used by the reference for the PR targets

# Old diffusers attention names (some checkpoints predate the rename) -> current names.
_LEGACY_ATTENTION_KEYS = {
    ".query.": ".to_q.",
    ".key.": ".to_k.",
    ".value.": ".to_v.",
    ".proj_attn.": ".to_out.0.",
}


def build_autoencoder_kl(
    *,
    block_out_channels: Sequence[int] = (128, 256, 512, 512),
    layers_per_block: int = 2,
    latent_channels: int = 4,
    norm_num_groups: int = 32,
    sample_size: int = 256,
    mid_block_add_attention: bool = True,
) -> AutoencoderKL:
    """A diffusers AutoencoderKL with plain encoder/decoder blocks (the SD VAE layout, any width).

    `mid_block_add_attention=False` drops the mid-block self-attention (cheaper tiny stand-ins only).
    """
    blocks = len(block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=tuple(block_out_channels),
        layers_per_block=layers_per_block,
        latent_channels=latent_channels,
        norm_num_groups=norm_num_groups,
        sample_size=sample_size,
        scaling_factor=SD_LATENT_SCALE,
        mid_block_add_attention=mid_block_add_attention,
    )


class VaeLatentEncoder(nn.Module):
    """Target encoder for the `vae_latents` cache (contract with `neuroclips/data/targets.py`)."""

    name = "vae_latents"
    source = "frames"
    frame_indices = None  # all frames of a clip

    def __init__(
        self,
        *,
        vae: AutoencoderKL,
        image_size: int,
        scaling_factor: float = SD_LATENT_SCALE,
        source_id: str = "",
    ) -> None:
        super().__init__()
        self.vae = vae
        self.source_id = source_id  # which weights (file names and sizes), recorded by the targets cache
        self.image_size = image_size
        self.scaling_factor = scaling_factor
        self.downsample_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.vae.requires_grad_(False)
        self.vae.eval()

    def train(self, mode: bool = True) -> VaeLatentEncoder:
        # Frozen: stays in eval mode whatever the surrounding system does.
        return super().train(False)

    def describe(self) -> dict:
        """What the targets cache records; a change (other weights, refitted stand-in) refuses a stale cache."""
        return {
            "class": "VaeLatentEncoder",
            "block_out_channels": list(self.vae.config.block_out_channels),
            "image_size": self.image_size,
            "scaling_factor": round(float(self.scaling_factor), 6),
            "weights": self.source_id,
        }

    def output_shape(self) -> tuple[int, ...]:
        side = self.image_size // self.downsample_factor
        return (self.vae.config.latent_channels, side, side)

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) float in [0, 1] -> (B, C, h, w) float32 scaled latents (distribution mode)."""
        images = images.float()
        if images.shape[-2:] != (self.image_size, self.image_size):
            images = F.interpolate(
                images, size=(self.image_size, self.image_size), mode="bilinear", antialias=True
            )
        posterior = self.vae.encode(2 * images - 1).latent_dist
        return (posterior.mode() * self.scaling_factor).float()

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        """(B, C, h, w) scaled latents -> (B, 3, H, W) float32 images in [0, 1]."""
        decoded = self.vae.decode(latents.to(self.vae.dtype) / self.scaling_factor).sample
        return (decoded.float() / 2 + 0.5).clamp(0, 1)


def _read_state_dict(path: Path, weights_field: str) -> dict[str, Tensor]:
    if path.is_dir():
        candidates = [path / "diffusion_pytorch_model.safetensors", path / "diffusion_pytorch_model.bin"]
        found = [c for c in candidates if c.exists()]
        if not found:
            raise MissingWeightsError(
                f"VAE folder {path} (config field `{weights_field}`) has no diffusion_pytorch_model.safetensors; "
                f"at scale=tiny run `python -m neuroclips.train stage=standins` first."
            )
        path = found[0]
    state = read_weight_file(path, weights_field, "VAE weights")
    for nested in ("state_dict", "model_state_dict"):
        if isinstance(state, dict) and nested in state:
            state = state[nested]
    return state


def _rename_legacy_attention(state: dict[str, Tensor]) -> dict[str, Tensor]:
    renamed = {}
    for key, value in state.items():
        for old, new in _LEGACY_ATTENTION_KEYS.items():
            key = key.replace(old, new)
        renamed[key] = value
    return renamed


def load_vae_latent_encoder(
    *,
    weights: str | None,
    image_size: int,
    block_out_channels: Sequence[int] = (128, 256, 512, 512),
    layers_per_block: int = 2,
    latent_channels: int = 4,
    norm_num_groups: int = 32,
    mid_block_add_attention: bool = True,
    scaling_factor: float | None = SD_LATENT_SCALE,
    weights_field: str = "scale.pr.vae.weights",
) -> VaeLatentEncoder:
    """Build the VAE architecture and load its weights from a local file or `save_pretrained` folder.

    `scaling_factor=None` takes the factor from the folder's config.json (the tiny stand-in records 1/std of its
    latents there). On the `meta` device (dry runs) nothing is read. A missing path raises one sentence naming the file and
    the config field. Linear attention weights stored as 1×1 convs (old checkpoints) are reshaped. `weights=None`
    keeps random weights (benchmarks and shape checks of the real architecture, `scale.pretrained=random`).
    """
    vae = build_autoencoder_kl(
        block_out_channels=block_out_channels,
        layers_per_block=layers_per_block,
        latent_channels=latent_channels,
        norm_num_groups=norm_num_groups,
        sample_size=image_size,
        mid_block_add_attention=mid_block_add_attention,
    )
    if next(vae.parameters()).is_meta or weights is None:
        return VaeLatentEncoder(
            vae=vae, image_size=image_size, scaling_factor=scaling_factor or SD_LATENT_SCALE
        )
    path = Path(weights)
    if not path.exists():
        raise MissingWeightsError(
            f"VAE weights not found: {path} (config field `{weights_field}`); expected a local "
            f"sd_image_var_autoenc.pth-style state dict or a diffusers save_pretrained folder"
            + (
                " (at scale=tiny run `python -m neuroclips.train stage=standins` first)."
                if path.suffix == ""
                else "."
            )
        )
    state = _rename_legacy_attention(_read_state_dict(path, weights_field))
    expected = vae.state_dict()
    for key, value in list(state.items()):
        if key in expected and value.dim() == 4 and expected[key].dim() == 2:
            state[key] = value[:, :, 0, 0]
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong_shape:
        raise ConfigError(
            f"VAE weights {path} (config field `{weights_field}`) do not match the configured architecture "
            f"(block_out_channels={list(block_out_channels)}, layers_per_block={layers_per_block}): "
            f"{len(missing)} missing keys {missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}, "
            f"{len(wrong_shape)} with other shapes {wrong_shape[:3]}."
        )
    vae.load_state_dict(state)
    if scaling_factor is None:
        config_file = path / "config.json"
        if not config_file.exists():
            raise ConfigError(
                f"config field `{weights_field}`: scaling_factor is null but {config_file} does not exist to provide it."
            )
        scaling_factor = float(json.loads(config_file.read_text())["scaling_factor"])
    return VaeLatentEncoder(
        vae=vae, image_size=image_size, scaling_factor=scaling_factor, source_id=_source_id(path)
    )


def _source_id(path: Path) -> str:
    # Names and sizes only, so moving the weights does not invalidate caches; a refitted stand-in changes its
    # recorded scaling factor, which `describe` includes.
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    return str([(f.name, f.stat().st_size) for f in files if f.is_file() and f.suffix != ".json"])
