"""Semantic Reconstructor nets: per-subject ridge adapters and the MindEye2-layout backbone (method.md §3.1).

State-dict keys follow MindEye2 / NeuroClips exactly (mindeye2-layout.md §2) when the system names its attributes
``ridge`` and ``backbone``: ``ridge.linears.0.{weight,bias}``, ``backbone.mixer_blocks{1,2}.*``,
``backbone.backbone_linear.*``, ``backbone.clip_proj.{0..8}.*``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from neuroclips.models.mixer import ResidualMixer, expect_sequence_input


class RidgeAdapters(nn.Module):
    """One learned ``Linear(V_s -> out_features)`` per subject ("ridge" in the reference; trained by SGD).

    Input (B, V) or (B, 1, V); output (B, 1, out_features).
    """

    def __init__(self, in_features: int | Sequence[int], out_features: int = 4096) -> None:
        super().__init__()
        sizes = [in_features] if isinstance(in_features, int) else list(in_features)
        self.in_features = sizes
        self.out_features = out_features
        self.linears = nn.ModuleList(nn.Linear(v, out_features) for v in sizes)

    def forward(self, voxels: Tensor, subject_index: int = 0) -> Tensor:
        linear = self.linears[subject_index]
        if voxels.shape[-1] != linear.in_features:
            raise ValueError(
                f"RidgeAdapters subject {subject_index}: expected {linear.in_features} voxels in the last "
                f"dimension, found input of shape {tuple(voxels.shape)}"
            )
        if voxels.dim() == 2:
            voxels = voxels.unsqueeze(1)
        return linear(voxels)


def clip_projector(dim: int, n_layers: int = 3) -> nn.Sequential:
    """Token-wise (LayerNorm -> GELU -> Linear) x n_layers, all ``dim`` wide (MindEye2 ``clip_proj``)."""
    layers: list[nn.Module] = []
    for _ in range(n_layers):
        layers += [nn.LayerNorm(dim), nn.GELU(), nn.Linear(dim, dim)]
    return nn.Sequential(*layers)


class SemanticBackbone(ResidualMixer):
    """MindEye2 ``BrainNetwork`` without the blurry branch: mixer trunk -> ``backbone_linear`` -> ``clip_proj``.

    ``forward`` returns ``(backbone_tokens, clip_voxels)``, both (B, clip_tokens, clip_dim); the first is the
    pre-projector output ("backbone"), the second the post-projector output ("clip_voxels").
    """

    def __init__(
        self,
        hidden: int = 4096,
        seq_len: int = 1,
        n_blocks: int = 4,
        dropout: float = 0.15,
        clip_tokens: int = 256,
        clip_dim: int = 1664,
        clip_proj_layers: int = 3,
    ) -> None:
        super().__init__(hidden=hidden, seq_len=seq_len, n_blocks=n_blocks, dropout=dropout)
        self.clip_tokens = clip_tokens
        self.clip_dim = clip_dim
        self.backbone_linear = nn.Linear(hidden * seq_len, clip_tokens * clip_dim)
        self.clip_proj = clip_projector(clip_dim, clip_proj_layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.mix(expect_sequence_input(x, self.seq_len, self.hidden))
        # row-major reshape: output feature index = token * clip_dim + channel (as upstream)
        backbone = self.backbone_linear(x.flatten(1)).reshape(len(x), self.clip_tokens, self.clip_dim)
        return backbone, self.clip_proj(backbone)
