"""Temporal-upsampling decoder of the Perceptual Reconstructor (method.md §4.1 item 4-5).

A VAE-style decoder (diffusers building blocks) that turns the low-level 64×7×7 maps of each frame into
4×28×28 SD-VAE latents. After every spatial self-attention a temporal self-attention runs over the frames
of one *window* at each spatial position, and the two are blended by a learnable scalar `w` (initialised
to 1): h <- w·h_spatial + (1-w)·h_temporal. There is no temporal positional encoding (reference).

The window is chosen by the caller (`frames_per_window`): 6 frames = one clip, or all frames of the batch
(the reference trains with windows of batch_size·6 frames over an unshuffled loader).

Sub-module names follow the reference `DecoderVideo` (conv_in, mid_block, up_blocks.N.{resnets, attentions,
temp_attentions, weights, upsamplers}, conv_norm_out, conv_out) so reference checkpoints map one-to-one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from diffusers.models.attention_processor import Attention
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.upsampling import Upsample2D
from torch import Tensor, nn

_EPS = 1e-6  # diffusers VAE decoder convention, kept by the reference


def _single_head_attention(channels: int, norm_groups: int) -> Attention:
    # One head whose width is the channel count, GroupNorm before, residual inside: the VAE attention block.
    return Attention(
        channels,
        heads=1,
        dim_head=channels,
        eps=_EPS,
        norm_num_groups=norm_groups,
        residual_connection=True,
        bias=True,
        upcast_softmax=True,
        _from_deprecated_attn_block=True,
    )


def _resnet(in_channels: int, out_channels: int, norm_groups: int) -> ResnetBlock2D:
    return ResnetBlock2D(
        in_channels=in_channels, out_channels=out_channels, temb_channels=None, groups=norm_groups, eps=_EPS
    )


def temporal_attention(hidden: Tensor, attention: Attention, frames_per_window: int) -> Tensor:
    """Self-attention over the frames of each window, independently at every spatial position.

    hidden: (n_windows * frames_per_window, C, H, W), frames of one window contiguous.
    """
    total, channels, height, width = hidden.shape
    if total % frames_per_window != 0:
        raise ValueError(
            f"temporal window of {frames_per_window} frames does not divide the {total} frames in the batch."
        )
    windows = total // frames_per_window
    sequences = (
        hidden.reshape(windows, frames_per_window, channels, height, width)
        .permute(0, 3, 4, 1, 2)
        .reshape(windows * height * width, frames_per_window, channels)
    )
    attended = attention(sequences)
    return (
        attended.reshape(windows, height, width, frames_per_window, channels)
        .permute(0, 3, 4, 1, 2)
        .reshape(total, channels, height, width)
    )


class _SpatioTemporalMixin(nn.Module):
    """Shared forward piece: spatial attention, temporal attention, blend by the learnable weight."""

    attentions: nn.ModuleList
    temp_attentions: nn.ModuleList
    weights: nn.ParameterList

    def _attend(self, hidden: Tensor, index: int, frames_per_window: int) -> Tensor:
        spatial = self.attentions[index](hidden)
        temporal = temporal_attention(spatial, self.temp_attentions[index], frames_per_window)
        weight = self.weights[index]
        return weight * spatial + (1 - weight) * temporal


class TemporalMidBlock(_SpatioTemporalMixin):
    """ResNet -> spatial attention -> temporal attention (blended) -> ResNet."""

    def __init__(self, *, channels: int, norm_groups: int) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            [_resnet(channels, channels, norm_groups), _resnet(channels, channels, norm_groups)]
        )
        self.attentions = nn.ModuleList([_single_head_attention(channels, norm_groups)])
        self.temp_attentions = nn.ModuleList([_single_head_attention(channels, norm_groups)])
        self.weights = nn.ParameterList([nn.Parameter(torch.ones(1))])

    def forward(self, hidden: Tensor, frames_per_window: int) -> Tensor:
        hidden = self.resnets[0](hidden, None)
        hidden = self._attend(hidden, 0, frames_per_window)
        return self.resnets[1](hidden, None)


class TemporalUpBlock(_SpatioTemporalMixin):
    """`layers` × (ResNet -> spatial attention -> temporal attention), then an optional 2× upsample."""

    def __init__(
        self, *, in_channels: int, out_channels: int, layers: int, norm_groups: int, upsample: bool
    ) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            _resnet(in_channels if i == 0 else out_channels, out_channels, norm_groups) for i in range(layers)
        )
        self.attentions = nn.ModuleList(
            _single_head_attention(out_channels, norm_groups) for _ in range(layers)
        )
        self.temp_attentions = nn.ModuleList(
            _single_head_attention(out_channels, norm_groups) for _ in range(layers)
        )
        self.weights = nn.ParameterList(nn.Parameter(torch.ones(1)) for _ in range(layers))
        self.upsamplers = (
            nn.ModuleList([Upsample2D(out_channels, use_conv=True, out_channels=out_channels)])
            if upsample
            else None
        )

    def forward(self, hidden: Tensor, frames_per_window: int) -> Tensor:
        for index, resnet in enumerate(self.resnets):
            hidden = self._attend(resnet(hidden, None), index, frames_per_window)
        if self.upsamplers is not None:
            hidden = self.upsamplers[0](hidden)
        return hidden


class TemporalVideoDecoder(nn.Module):
    """(N, in_channels, s, s) -> (N, out_channels, s·2^(len(channels)-1), same), N = windows × frames_per_window.

    `block_out_channels` is listed from the output end (reference [32, 64, 128]); the mid block and the first
    up block run at the last (widest) entry. Each up block has `layers_per_block + 1` ResNet+attention layers.
    """

    def __init__(
        self,
        *,
        in_channels: int = 64,
        out_channels: int = 4,
        block_out_channels: Sequence[int] = (32, 64, 128),
        layers_per_block: int = 1,
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        widths = list(block_out_channels)
        for width in widths:
            if width % norm_groups != 0:
                raise ValueError(f"decoder width {width} is not divisible by norm_groups={norm_groups}.")
        self.upsample_factor = 2 ** (len(widths) - 1)
        self.conv_in = nn.Conv2d(in_channels, widths[-1], kernel_size=3, padding=1)
        self.mid_block = TemporalMidBlock(channels=widths[-1], norm_groups=norm_groups)
        reversed_widths = list(reversed(widths))
        self.up_blocks = nn.ModuleList()
        previous = reversed_widths[0]
        for index, width in enumerate(reversed_widths):
            self.up_blocks.append(
                TemporalUpBlock(
                    in_channels=previous,
                    out_channels=width,
                    layers=layers_per_block + 1,
                    norm_groups=norm_groups,
                    upsample=index < len(reversed_widths) - 1,
                )
            )
            previous = width
        self.conv_norm_out = nn.GroupNorm(num_groups=norm_groups, num_channels=widths[0], eps=_EPS)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(widths[0], out_channels, kernel_size=3, padding=1)

    def forward(self, maps: Tensor, frames_per_window: int) -> Tensor:
        hidden = self.conv_in(maps)
        hidden = self.mid_block(hidden, frames_per_window)
        for block in self.up_blocks:
            hidden = block(hidden, frames_per_window)
        return self.conv_out(self.conv_act(self.conv_norm_out(hidden)))
