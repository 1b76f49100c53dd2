"""Perceptual Reconstructor network (method.md §4.1, mindeye2-layout.md §9).

voxels (B, V) -> InceptionExtension -> (B·F, V) pseudo-fMRIs -> ridge (V -> hidden) -> residual-MLP
backbone -> low-level head (hidden -> C×s×s maps, GroupNorm or BatchNorm: `low_level_norm`) -> two outputs per frame:
  * `latents`: TemporalVideoDecoder -> (B, F, 4, s·2^k, s·2^k) SD-VAE latents (paper: 4×28×28);
  * `aux_tokens`: 1×1-conv projector -> (B, F, s², aux_dim) (paper: 49×512), the student of the soft
    contrastive loss against the ConvNeXt teacher.

The backbone is the PR variant of the MindEye2 BrainNetwork: same two-stream mixer blocks, no CLIP head.
`reference_state_dict_to_ours` maps a reference `video_subj0X_PR.pth` state dict onto this module.

Several subjects (`voxels` a list, `subj=all`): the subject-specific parts, Inception Extension and ridge, exist
once per subject (`inception.<k>.*`, `ridge.linears.<k>.*`), everything after the ridge is shared. One subject
keeps the reference keys (`inception.*`, `ridge.linears.0.*`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from neuroclips.models.inception import InceptionExtension
from neuroclips.models.video_decoder import TemporalVideoDecoder

TEMPORAL_WINDOWS = ("clip", "batch")


def resolve_frames_per_window(temporal_window: str | int, clips_in_batch: int, frames_per_clip: int) -> int:
    """Number of consecutive frames that attend to each other in the decoder's temporal attention.

    `clip`: the frames of one clip; `batch`: every frame of the batch (reference); an int k: k clips.
    """
    if temporal_window == "clip":
        return frames_per_clip
    if temporal_window == "batch":
        return clips_in_batch * frames_per_clip
    if isinstance(temporal_window, int) and not isinstance(temporal_window, bool) and temporal_window > 0:
        if clips_in_batch % temporal_window != 0:
            raise ValueError(
                f"temporal_window={temporal_window} clips does not divide the batch of {clips_in_batch} clips."
            )
        return temporal_window * frames_per_clip
    raise ValueError(
        f"temporal_window must be one of {TEMPORAL_WINDOWS} or a positive number of clips, found {temporal_window!r}."
    )


def validate_temporal_window(temporal_window: str | int) -> None:
    """Raise the option error early (at construction) instead of at the first batch."""
    clips = (
        temporal_window if isinstance(temporal_window, int) and not isinstance(temporal_window, bool) else 1
    )
    resolve_frames_per_window(temporal_window, max(clips, 1), 1)


class SubjectRidge(nn.Module):
    """Per-subject linear map V_s -> hidden (learned by SGD, as in the reference; keys `linears.<k>`)."""

    def __init__(self, *, voxels: int | Sequence[int], hidden: int) -> None:
        super().__init__()
        sizes = [voxels] if isinstance(voxels, int) else list(voxels)
        self.in_features = sizes
        self.linears = nn.ModuleList([nn.Linear(v, hidden) for v in sizes])

    def forward(self, voxels: Tensor, subject_index: int = 0) -> Tensor:
        return self.linears[subject_index](voxels)


def _two_layer_mlp(width: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Dropout(dropout), nn.Linear(width, width))


class PerceptualBackbone(nn.Module):
    """MindEye2-style residual MLP with seq_len 1 and two residual streams (mindeye2-layout.md §5.2)."""

    def __init__(self, *, hidden: int = 4096, n_blocks: int = 4, dropout: float = 0.15) -> None:
        super().__init__()
        self.mixer_blocks1 = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(hidden), _two_layer_mlp(hidden, dropout)) for _ in range(n_blocks)
        )
        # LayerNorm over the length-1 sequence axis: degenerate (adds a learned constant), kept for parity.
        self.mixer_blocks2 = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(1), _two_layer_mlp(1, dropout)) for _ in range(n_blocks)
        )

    def forward(self, features: Tensor) -> Tensor:
        x = features.unsqueeze(1)  # (N, 1, hidden)
        residual_features, residual_sequence = x, x.transpose(1, 2)
        for feature_block, sequence_block in zip(self.mixer_blocks1, self.mixer_blocks2):
            x = feature_block(x) + residual_features
            residual_features = x
            x = sequence_block(x.transpose(1, 2)) + residual_sequence
            residual_sequence = x
            x = x.transpose(1, 2)
        return x.flatten(1)


LOW_LEVEL_NORMS = ("group", "batch")


class LowLevelHead(nn.Module):
    """hidden -> (channels, size, size) maps: Linear -> Dropout(0.3) -> reshape -> norm.

    `norm="group"` (reference): GroupNorm(1, channels), per sample over all channels and positions. At small widths
    the linear layer's output is dominated by a part that is the same for every clip (its bias and the weights times
    the backbone's mean output), which GroupNorm normalises, so the clip-dependent part of the maps starts small.
    This was the first suspect for the tiny PR's predict-the-mean plateau; the cause was the reference's batches of
    consecutive clips at a high learning rate (experiments/simulated_benchmark/pr_plateau.md), and scale=tiny keeps
    `group`. `norm="batch"`: BatchNorm1d over the channels × size² features of the linear output, which
    removes that clip-independent part (the mean over the batch's frames) and scales each feature to unit variance
    over the batch, so the maps vary across clips from the first step; running statistics at evaluation. Under
    DDP its statistics are each process's own (no SyncBatchNorm), like the `batch` temporal window.
    `dropout` (reference 0.3; `scale.pr.net.low_level_dropout`) drops units of the linear output before the norm, so
    its noise scales with the large clip-independent part; 0 did not remove the plateau (pr_plateau.md).
    """

    def __init__(
        self, *, hidden: int, channels: int = 64, size: int = 7, dropout: float = 0.3, norm: str = "group"
    ) -> None:
        super().__init__()
        if norm not in LOW_LEVEL_NORMS:
            raise ValueError(
                f"scale.pr.net.low_level_norm: expected one of {LOW_LEVEL_NORMS}, found {norm!r}."
            )
        self.channels, self.size, self.norm_kind = channels, size, norm
        self.linear = nn.Linear(hidden, channels * size * size)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.GroupNorm(1, channels) if norm == "group" else nn.BatchNorm1d(channels * size * size)

    def forward(self, features: Tensor) -> Tensor:
        maps = self.dropout(self.linear(features))
        if self.norm_kind == "batch":
            return self.norm(maps).reshape(-1, self.channels, self.size, self.size)
        return self.norm(maps.reshape(-1, self.channels, self.size, self.size))


class AuxTokenHead(nn.Module):
    """(N, C, s, s) maps -> (N, s², dim) tokens: 1×1 convs C -> dim -> dim -> dim with GroupNorm + ReLU."""

    def __init__(self, *, in_channels: int = 64, dim: int = 512) -> None:
        super().__init__()
        self.projector = nn.Sequential(
            nn.Conv2d(in_channels, dim, 1, bias=False),
            nn.GroupNorm(1, dim),
            nn.ReLU(True),
            nn.Conv2d(dim, dim, 1, bias=False),
            nn.GroupNorm(1, dim),
            nn.ReLU(True),
            nn.Conv2d(dim, dim, 1, bias=True),
        )

    def forward(self, maps: Tensor) -> Tensor:
        return self.projector(maps).flatten(2).transpose(1, 2)


class PerceptualNet(nn.Module):
    """fMRI of B clips -> per-frame SD-VAE latents and auxiliary tokens (see module docstring)."""

    def __init__(
        self,
        *,
        voxels: int | Sequence[int],
        frames_per_clip: int = 6,
        inception_hidden: int = 256,
        inception_blocks: int = 1,
        hidden: int = 4096,
        n_blocks: int = 4,
        dropout: float = 0.15,
        low_level_channels: int = 64,
        low_level_size: int = 7,
        low_level_dropout: float = 0.3,
        low_level_norm: str = "group",
        aux_dim: int = 512,
        decoder_channels: Sequence[int] = (32, 64, 128),
        decoder_layers_per_block: int = 1,
        decoder_norm_groups: int = 32,
        latent_channels: int = 4,
    ) -> None:
        super().__init__()
        self.frames_per_clip = frames_per_clip
        sizes = [voxels] if isinstance(voxels, int) else [int(v) for v in voxels]
        inceptions = [
            InceptionExtension(
                voxels=v,
                hidden=inception_hidden,
                frames_per_clip=frames_per_clip,
                n_blocks=inception_blocks,
                dropout=dropout,
            )
            for v in sizes
        ]
        # one subject: the reference's single module (keys inception.*); several: one per subject (inception.<k>.*)
        self.inception = inceptions[0] if len(sizes) == 1 else nn.ModuleList(inceptions)
        self.ridge = SubjectRidge(voxels=sizes if len(sizes) > 1 else sizes[0], hidden=hidden)
        self.backbone = PerceptualBackbone(hidden=hidden, n_blocks=n_blocks, dropout=dropout)
        self.low_level = LowLevelHead(
            hidden=hidden,
            channels=low_level_channels,
            size=low_level_size,
            dropout=low_level_dropout,
            norm=low_level_norm,
        )
        self.aux_head = AuxTokenHead(in_channels=low_level_channels, dim=aux_dim)
        self.decoder = TemporalVideoDecoder(
            in_channels=low_level_channels,
            out_channels=latent_channels,
            block_out_channels=decoder_channels,
            layers_per_block=decoder_layers_per_block,
            norm_groups=decoder_norm_groups,
        )
        self.latent_size = low_level_size * self.decoder.upsample_factor

    def subject_inception(self, subject_index: int = 0) -> InceptionExtension:
        return self.inception[subject_index] if isinstance(self.inception, nn.ModuleList) else self.inception

    def forward(
        self, voxels: Tensor, temporal_window: str | int = "batch", subject_index: int = 0
    ) -> dict[str, Tensor]:
        clips = voxels.shape[0]
        frames_per_window = resolve_frames_per_window(temporal_window, clips, self.frames_per_clip)
        pseudo_fmri = self.subject_inception(subject_index)(voxels)  # (B·F, V), clip-major
        maps = self.low_level(self.backbone(self.ridge(pseudo_fmri, subject_index)))
        latents = self.decoder(maps, frames_per_window)
        tokens = self.aux_head(maps)
        return {
            "latents": latents.reshape(clips, self.frames_per_clip, *latents.shape[1:]),
            "aux_tokens": tokens.reshape(clips, self.frames_per_clip, *tokens.shape[1:]),
        }


# Reference key prefix (NeuroClips train_PR.py container) -> our prefix; applied longest-first.
_REFERENCE_PREFIXES = (
    ("fmri.", "inception."),
    ("ridge1.", "ridge."),
    ("backbone.blin1.", "low_level.linear."),
    ("backbone.bnorm.", "low_level.norm."),
    ("backbone.b_maps_projector.", "aux_head.projector."),
    ("backbone.bupsampler.", "decoder."),
    ("backbone.mixer_blocks", "backbone.mixer_blocks"),
)


def reference_state_dict_to_ours(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename the keys of a reference PR checkpoint (`model_state_dict`) to PerceptualNet keys."""
    renamed: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        for old, new in _REFERENCE_PREFIXES:
            if key.startswith(old):
                renamed[new + key[len(old) :]] = value
                break
        else:
            raise KeyError(
                f"reference PR state dict has an unknown key {key!r} (expected one of the prefixes "
                f"{[old for old, _ in _REFERENCE_PREFIXES]})."
            )
    return renamed


def training_window_from_checkpoint(path: str, default: str | int = "batch") -> str | int:
    """Loader: the `system.temporal_window` a `pr` checkpoint was trained with (from its embedded config).

    Returns `default` in dry runs (meta device) and for checkpoints that do not record it.
    """
    if torch.get_default_device().type == "meta":
        return default
    from neuroclips.checkpoints import read_checkpoint

    config = (read_checkpoint(path, field="pr_ckpt").get("neuroclips") or {}).get("config") or {}
    return (config.get("system") or {}).get("temporal_window", default)
