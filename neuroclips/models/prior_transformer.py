"""The transformer of the diffusion prior (mindeye2-layout.md §2, §4): dalle2-pytorch 1.15.6's non-causal
transformer as MindEye2/NeuroClips use it — cosine-similarity multi-query attention with a null key/value, T5
relative-position bias, partial rotary embedding, SwiGLU feed-forward — and the time embedding. Module names and
state-dict keys are upstream's; ``neuroclips.models.prior`` builds the network and the diffusion around it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# --- small pieces ---------------------------------------------------------------------------------------------


class GainLayerNorm(nn.Module):
    """Gain-only LayerNorm (parameter ``g``); eps 1e-5 for float32 inputs, 1e-3 otherwise (fp16/bf16 autocast).

    ``stable=True`` divides each row by its (signed, detached) maximum first, as the final prior norm does.
    """

    def __init__(self, dim: int, eps: float = 1e-5, low_precision_eps: float = 1e-3, stable: bool = False):
        super().__init__()
        self.eps = eps
        self.low_precision_eps = low_precision_eps
        self.stable = stable
        self.g = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        eps = self.eps if x.dtype == torch.float32 else self.low_precision_eps
        if self.stable:
            x = x / x.amax(dim=-1, keepdim=True).detach()
        var = torch.var(x, dim=-1, unbiased=False, keepdim=True)
        mean = torch.mean(x, dim=-1, keepdim=True)
        return (x - mean) * (var + eps).rsqrt() * self.g


class SinusoidalTimeEmbedding(nn.Module):
    """[sin(t f_k), cos(t f_k)], f_k = exp(-k ln(10000) / (dim/2 - 1)); computed in the dtype of ``t``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: Tensor) -> Tensor:
        half = self.dim // 2
        step = math.log(10000) / (half - 1)
        freqs = torch.exp(torch.arange(half, device=t.device, dtype=t.dtype) * -step)
        angles = t[:, None] * freqs[None, :]
        return torch.cat((angles.sin(), angles.cos()), dim=-1)


class TimeMLP(nn.Module):
    """Linear -> SiLU -> Linear -> SiLU -> Linear with hidden = 2 * dim_out; input cast to float32 (as upstream).

    Keys: ``net.0.0.*``, ``net.1.0.*``, ``net.2.*`` (the Identity slots keep upstream's indices).
    """

    def __init__(self, dim_in: int, dim_out: int, expansion: float = 2.0, depth: int = 2) -> None:
        super().__init__()
        hidden = int(expansion * dim_out)
        layers: list[nn.Module] = [nn.Sequential(nn.Linear(dim_in, hidden), nn.SiLU(), nn.Identity())]
        for _ in range(depth - 1):
            layers.append(nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Identity()))
        layers.append(nn.Linear(hidden, dim_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.float())


class Unflatten1(nn.Module):
    """(B, n*d) -> (B, n, d); holds no weights (occupies index 1 of ``to_time_embeds``)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], self.n, -1)


class RotaryEmbedding(nn.Module):
    """Rotary embedding on the first ``dim`` features, adjacent pairs (0,1), (2,3), ...; theta 10000.

    ``freqs`` is a non-trainable Parameter (as upstream) so it appears in state dicts; one instance is shared by
    all attention layers, so ``state_dict`` lists it once per layer.
    """

    def __init__(self, dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        self.dim = dim
        freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        self.freqs = nn.Parameter(freqs, requires_grad=False)

    def angles(self, seq_len: int, device: torch.device) -> Tensor:
        positions = torch.arange(seq_len, device=device, dtype=self.freqs.dtype)
        angles = positions[:, None] * self.freqs[None, :]
        return angles.repeat_interleave(2, dim=-1)  # (seq_len, dim), each angle used for one pair

    def rotate(self, t: Tensor) -> Tensor:
        """Rotate along the sequence axis -2. Angle math in float32 with autocast off, as upstream."""
        with torch.autocast(device_type=t.device.type, enabled=False):
            angles = self.angles(t.shape[-2], t.device).float()
            if t.dim() == 3:  # upstream casts the table to the key dtype for 3-D tensors only
                angles = angles.to(t.dtype)
            head, tail = t[..., : self.dim], t[..., self.dim :]
            pairs = head.unflatten(-1, (-1, 2))
            rotated_half = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
            head = head * angles.cos() + rotated_half * angles.sin()
            return torch.cat((head, tail.to(head.dtype)), dim=-1)


class RelativePositionBias(nn.Module):
    """T5-style one-sided bucketed bias, ``relative_attention_bias`` = Embedding(num_buckets, heads)."""

    def __init__(self, heads: int, num_buckets: int = 32, max_distance: int = 128) -> None:
        super().__init__()
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.relative_attention_bias = nn.Embedding(num_buckets, heads)

    def bucket(self, distance: Tensor) -> Tensor:
        n = distance.clamp(min=0)
        exact = self.num_buckets // 2
        large = (
            exact
            + (
                torch.log(n.float() / exact)
                / math.log(self.max_distance / exact)
                * (self.num_buckets - exact)
            ).long()
        )
        large = large.clamp(max=self.num_buckets - 1)
        return torch.where(n < exact, n, large)

    def forward(self, n_queries: int, n_keys: int, device: torch.device) -> Tensor:
        q = torch.arange(n_queries, device=device)
        k = torch.arange(n_keys, device=device)
        # key 0 is the null key, so real token t sits at key index t + 1 (upstream's offset, kept on purpose)
        buckets = self.bucket(q[:, None] - k[None, :])
        return self.relative_attention_bias(buckets).permute(2, 0, 1)  # (heads, i, j)


class PriorAttention(nn.Module):
    """Cosine-similarity multi-query attention (one shared key/value head) with a learned null key/value.

    Keys: ``null_kv`` (2, dim_head), ``norm.g``, ``to_q``, ``to_kv``, ``rotary_emb.freqs``, ``to_out.0``,
    ``to_out.1.g``. Logits = cosine_scale * cos(q, k) + bias; softmax in float32.
    """

    def __init__(
        self,
        dim: int,
        dim_head: int,
        heads: int,
        rotary_emb: RotaryEmbedding | None,
        cosine_scale: float = 16.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        self.cosine_scale = cosine_scale
        inner = dim_head * heads
        self.norm = GainLayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.null_kv = nn.Parameter(torch.randn(2, dim_head))
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, dim_head * 2, bias=False)
        self.rotary_emb = rotary_emb
        self.to_out = nn.Sequential(nn.Linear(inner, dim, bias=False), GainLayerNorm(dim))

    def forward(self, x: Tensor, attn_bias: Tensor) -> Tensor:
        b = x.shape[0]
        x = self.norm(x)
        q = self.to_q(x).unflatten(-1, (self.heads, self.dim_head)).transpose(1, 2)  # (b, h, n, d)
        k, v = self.to_kv(x).chunk(2, dim=-1)  # (b, n, d) each, shared by all heads
        q = (
            q * self.cosine_scale
        )  # cancelled by the l2 normalisation below; kept for parity under low precision
        if self.rotary_emb is not None:
            q, k = self.rotary_emb.rotate(q), self.rotary_emb.rotate(k)
        null_k, null_v = (t.expand(b, 1, -1).to(k.dtype) for t in self.null_kv[:, None, :].unbind(0))
        k = torch.cat((null_k, k), dim=-2)
        v = torch.cat((null_v.to(v.dtype), v), dim=-2)
        root = math.sqrt(self.cosine_scale)
        q, k = F.normalize(q, dim=-1) * root, F.normalize(k, dim=-1) * root
        sim = torch.einsum("bhid,bjd->bhij", q, k) + attn_bias
        attn = self.dropout(sim.softmax(dim=-1, dtype=torch.float32).to(sim.dtype))
        out = torch.einsum("bhij,bjd->bhid", attn, v.to(attn.dtype))
        return self.to_out(out.transpose(1, 2).flatten(2))


class SwiGLU(nn.Module):
    """value * SiLU(gate), value = first half of the features, gate = second half."""

    def forward(self, x: Tensor) -> Tensor:
        value, gate = x.chunk(2, dim=-1)
        return value * F.silu(gate)


def prior_feed_forward(dim: int, mult: int = 4, dropout: float = 0.0) -> nn.Sequential:
    """Keys ``0.g``, ``1.weight`` (dim -> 2*mult*dim), ``5.weight`` (mult*dim -> dim); no biases."""
    inner = int(mult * dim)
    return nn.Sequential(
        GainLayerNorm(dim),
        nn.Linear(dim, inner * 2, bias=False),
        SwiGLU(),
        nn.Identity(),  # upstream's post-activation norm slot (normformer=False)
        nn.Dropout(dropout),
        nn.Linear(inner, dim, bias=False),
    )


class PriorTransformer(nn.Module):
    """Pre-norm residual transformer; final stable gain norm and bias-free ``project_out``. Never causal here."""

    def __init__(
        self,
        dim: int,
        depth: int,
        dim_head: int,
        heads: int,
        ff_mult: int = 4,
        rotary_dim: int = 32,
        attn_dropout: float = 0.0,
        ff_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.rel_pos_bias = RelativePositionBias(heads=heads)
        rotary = RotaryEmbedding(min(rotary_dim, dim_head))  # one instance shared by every layer, as upstream
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    PriorAttention(dim, dim_head, heads, rotary, dropout=attn_dropout),
                    prior_feed_forward(dim, ff_mult, ff_dropout),
                ]
            )
            for _ in range(depth)
        )
        self.norm = GainLayerNorm(dim, stable=True)
        self.project_out = nn.Linear(dim, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[1]
        attn_bias = self.rel_pos_bias(n, n + 1, device=x.device)
        for attention, feed_forward in self.layers:
            x = attention(x, attn_bias) + x
            x = feed_forward(x) + x
        return self.project_out(self.norm(x))
