"""Inception Extension: one fMRI vector -> one pseudo-fMRI per video frame (method.md §4.1).

The reference (NeuroClips `Inception_Extension`) is a shallow MLP: V -> 256, one mixer block, 256 -> 6·V.
Its mixer block differs from the SR backbone's: the MLP is a single Linear + GELU + Dropout (no second
Linear), and the "channel mixing" block acts on a sequence axis of length 1, so it reduces to adding a
learned scalar. We keep both for state-dict parity with reference checkpoints (mindeye2-layout.md §9).
"""

from __future__ import annotations

from torch import Tensor, nn


def _linear_gelu_dropout(in_features: int, out_features: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, out_features), nn.GELU(), nn.Dropout(dropout))


class InceptionExtension(nn.Module):
    """Maps voxels (B, V) to `frames_per_clip` pseudo-fMRIs (B * frames_per_clip, V), clip-major order.

    Row `b * frames_per_clip + j` of the output is the pseudo-fMRI of frame `j` of clip `b`.
    """

    def __init__(
        self,
        *,
        voxels: int,
        hidden: int = 256,
        frames_per_clip: int = 6,
        n_blocks: int = 1,
        dropout: float = 0.15,
    ) -> None:
        super().__init__()
        self.voxels = voxels
        self.frames_per_clip = frames_per_clip
        self.lin0 = _linear_gelu_dropout(voxels, hidden, dropout)
        # Two residual streams as in the reference: features (size `hidden`) and the length-1 sequence axis.
        self.mixer_blocks1 = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(hidden), _linear_gelu_dropout(hidden, hidden, dropout))
            for _ in range(n_blocks)
        )
        self.mixer_blocks2 = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(1), _linear_gelu_dropout(1, 1, dropout)) for _ in range(n_blocks)
        )
        self.lin1 = _linear_gelu_dropout(hidden, voxels * frames_per_clip, dropout)

    def forward(self, voxels: Tensor) -> Tensor:
        if voxels.dim() != 2 or voxels.shape[-1] != self.voxels:
            raise ValueError(
                f"InceptionExtension expected voxels of shape (B, {self.voxels}), found {tuple(voxels.shape)}."
            )
        x = self.lin0(voxels).unsqueeze(1)  # (B, 1, hidden)
        residual_features, residual_sequence = x, x.transpose(1, 2)
        for feature_block, sequence_block in zip(self.mixer_blocks1, self.mixer_blocks2):
            x = feature_block(x) + residual_features
            residual_features = x
            x = sequence_block(x.transpose(1, 2)) + residual_sequence
            residual_sequence = x
            x = x.transpose(1, 2)
        x = self.lin1(x.flatten(1))
        return x.reshape(voxels.shape[0] * self.frames_per_clip, self.voxels)
