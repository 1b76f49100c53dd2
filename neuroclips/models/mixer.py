"""Residual MLP mixer blocks with MindEye2's state-dict layout (shared by the SR and PR backbones).

Layout (mindeye2-layout.md §2, §5.2): a block is ``Sequential(LayerNorm, Sequential(Linear, GELU, Dropout, Linear))``,
so its keys are ``0.{weight,bias}``, ``1.0.{weight,bias}`` and ``1.3.{weight,bias}``. A ``ResidualMixer`` holds
``mixer_blocks1`` (over the hidden axis) and ``mixer_blocks2`` (over the sequence axis) and runs MindEye2's
two-stream residual, which is not the usual ``x = f(x) + x`` (see ``ResidualMixer.forward``).

Stable API for other parts: ``MixerBlock``, ``ResidualMixer``.
"""

from __future__ import annotations

from torch import Tensor, nn


class MixerBlock(nn.Sequential):
    """LayerNorm -> Linear -> GELU -> Dropout [-> Linear], residual added by the caller.

    ``second_linear=False`` gives the one-Linear variant used by NeuroClips' Inception Extension
    (keys ``0.*`` and ``1.0.*`` only).
    """

    def __init__(self, dim: int, dropout: float = 0.15, second_linear: bool = True) -> None:
        mlp: list[nn.Module] = [nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout)]
        if second_linear:
            mlp.append(nn.Linear(dim, dim))
        super().__init__(nn.LayerNorm(dim), nn.Sequential(*mlp))


class ResidualMixer(nn.Module):
    """MindEye2's mixer trunk: ``n_blocks`` pairs of (hidden-axis block, sequence-axis block).

    Input and output are (B, seq_len, hidden). With seq_len = 1 the sequence-axis block sees a LayerNorm over one
    element (it outputs its bias), so in eval mode it adds a learned constant; it exists for weight compatibility.
    """

    def __init__(
        self,
        hidden: int = 4096,
        seq_len: int = 1,
        n_blocks: int = 4,
        dropout: float = 0.15,
        second_linear: bool = True,
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.seq_len = seq_len
        self.mixer_blocks1 = nn.ModuleList(
            MixerBlock(hidden, dropout, second_linear) for _ in range(n_blocks)
        )
        self.mixer_blocks2 = nn.ModuleList(
            MixerBlock(seq_len, dropout, second_linear) for _ in range(n_blocks)
        )

    def mix(self, x: Tensor) -> Tensor:
        """(B, seq_len, hidden) -> (B, seq_len, hidden) with MindEye2's two residual streams.

        Stream 1 carries the previous hidden-axis output (without the sequence-axis addition), stream 2 the
        previous sequence-axis output; replacing this by a single stream changes outputs by O(1).
        """
        residual_hidden = x
        residual_seq = x.transpose(1, 2)
        for block_hidden, block_seq in zip(self.mixer_blocks1, self.mixer_blocks2):
            x = block_hidden(x) + residual_hidden
            residual_hidden = x
            x = block_seq(x.transpose(1, 2)) + residual_seq
            residual_seq = x
            x = x.transpose(1, 2)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.mix(x)


def expect_sequence_input(x: Tensor, seq_len: int, hidden: int) -> Tensor:
    """Accept (B, hidden) or (B, seq_len, hidden); return the 3-D form or raise naming the shapes."""
    if x.dim() == 2 and seq_len == 1:
        x = x.unsqueeze(1)
    if x.dim() != 3 or x.shape[1] != seq_len or x.shape[2] != hidden:
        raise ValueError(
            f"mixer input: expected shape (B, {seq_len}, {hidden}) (or (B, {hidden}) when seq_len=1), "
            f"found {tuple(x.shape)}"
        )
    return x


__all__ = ["MixerBlock", "ResidualMixer", "expect_sequence_input"]
