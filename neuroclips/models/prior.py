"""Diffusion prior with MindEye2's ``BrainDiffusionPrior`` / ``PriorNetwork`` semantics and state-dict layout.

Written from mindeye2-layout.md §2, §4, §6, §7 (dalle2-pytorch 1.15.6 behaviour as used by MindEye2/NeuroClips):
a non-causal transformer over [condition tokens | time token | noisy image tokens], cosine-similarity multi-query
attention with a null key/value, T5 relative-position bias, partial rotary embedding, SwiGLU feed-forward,
x0 prediction with a 100-step cosine schedule and classifier-free-guidance dropout with learned null tables.

Keys (inside ``BrainDiffusionPrior``): ``noise_scheduler.<13 buffers>``, ``net.learned_query``,
``net.null_brain_embeds``, ``net.null_image_embed``, ``net.to_time_embeds.0.1.net.*``,
``net.causal_transformer.{rel_pos_bias.*, layers.<i>.{0,1}.*, norm.g, project_out.weight}``.
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


def keep_mask(
    batch: int, drop_prob: float, device: torch.device, generator: torch.Generator | None
) -> Tensor:
    """Per-sample keep mask; exact 0/1 probabilities draw nothing (so seeded streams match upstream)."""
    if drop_prob == 0:
        return torch.ones(batch, dtype=torch.bool, device=device)
    if drop_prob == 1:
        return torch.zeros(batch, dtype=torch.bool, device=device)
    return torch.zeros(batch, device=device).uniform_(0, 1, generator=generator) < 1 - drop_prob


# --- the network ----------------------------------------------------------------------------------------------


class PriorNetwork(nn.Module):
    """Predicts clean image tokens from (noisy image tokens, timestep, condition tokens).

    ``learned_query`` (num_tokens, dim) is added to the noisy image tokens ("pos_emb" mode); the prediction is the
    output at the image-token positions.
    """

    def __init__(
        self,
        dim: int = 1664,
        depth: int = 6,
        dim_head: int = 52,
        heads: int = 32,
        num_tokens: int = 256,
        ff_mult: int = 4,
        rotary_dim: int = 32,
    ) -> None:
        super().__init__()
        if dim_head * heads != dim:
            raise ValueError(
                f"PriorNetwork: dim_head * heads must equal dim, found {dim_head}*{heads} != {dim}"
            )
        self.dim = dim
        self.num_tokens = num_tokens
        self.to_time_embeds = nn.Sequential(
            nn.Sequential(SinusoidalTimeEmbedding(dim), TimeMLP(dim, dim)), Unflatten1(1)
        )
        self.learned_query = nn.Parameter(torch.randn(num_tokens, dim) * dim**-0.5)
        self.causal_transformer = PriorTransformer(dim, depth, dim_head, heads, ff_mult, rotary_dim)
        self.null_brain_embeds = nn.Parameter(torch.randn(num_tokens, dim))
        self.null_image_embed = nn.Parameter(torch.randn(num_tokens, dim))

    def forward(
        self,
        image_embed: Tensor,
        timesteps: Tensor,
        cond: Tensor,
        cond_drop_prob: float = 0.0,
        image_drop_prob: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        batch, dtype = image_embed.shape[0], image_embed.dtype
        keep_cond = keep_mask(batch, cond_drop_prob, image_embed.device, generator)[:, None, None]
        keep_image = keep_mask(batch, image_drop_prob, image_embed.device, generator)[:, None, None]
        cond = torch.where(keep_cond, cond, self.null_brain_embeds.to(cond.dtype)[None])
        image_embed = torch.where(keep_image, image_embed, self.null_image_embed.to(dtype)[None])
        time_embed = self.to_time_embeds(timesteps.to(dtype))
        image_embed = image_embed + self.learned_query[None].to(dtype)
        tokens = torch.cat((cond, time_embed.to(cond.dtype), image_embed.to(cond.dtype)), dim=-2)
        return self.causal_transformer(tokens)[..., -self.num_tokens :, :]

    def forward_with_cond_scale(
        self, image_embed: Tensor, timesteps: Tensor, cond: Tensor, cond_scale: float = 1.0
    ) -> Tensor:
        """Classifier-free guidance: null + (cond - null) * scale; the null pass replaces both inputs by nulls."""
        out = self.forward(image_embed, timesteps, cond)
        if cond_scale == 1:
            return out
        null = self.forward(image_embed, timesteps, cond, cond_drop_prob=1.0, image_drop_prob=1.0)
        return null + (out - null) * cond_scale


# --- the diffusion wrapper ------------------------------------------------------------------------------------


def cosine_betas(timesteps: int, s: float = 0.008) -> Tensor:
    """dalle2's cosine schedule in float64: abar(t) = cos^2(((t/T)+s)/(1+s) * pi/2) / abar(0), betas clipped."""
    steps = timesteps + 1
    x = torch.linspace(0, timesteps, steps, dtype=torch.float64)
    abar = torch.cos(((x / timesteps) + s) / (1 + s) * math.pi * 0.5) ** 2
    abar = abar / abar[0]
    return torch.clip(1 - (abar[1:] / abar[:-1]), 0, 0.999)


class NoiseScheduler(nn.Module):
    """The 13 persistent float32 buffers of dalle2's scheduler (same names, so checkpoints load)."""

    def __init__(self, timesteps: int = 100) -> None:
        super().__init__()
        self.num_timesteps = timesteps
        betas = cosine_betas(timesteps)
        alphas = 1.0 - betas
        abar = torch.cumprod(alphas, dim=0)
        abar_prev = F.pad(abar[:-1], (1, 0), value=1.0)
        posterior_variance = betas * (1.0 - abar_prev) / (1.0 - abar)
        buffers = {
            "betas": betas,
            "alphas_cumprod": abar,
            "alphas_cumprod_prev": abar_prev,
            "sqrt_alphas_cumprod": torch.sqrt(abar),
            "sqrt_one_minus_alphas_cumprod": torch.sqrt(1.0 - abar),
            "log_one_minus_alphas_cumprod": torch.log(1.0 - abar),
            "sqrt_recip_alphas_cumprod": torch.sqrt(1.0 / abar),
            "sqrt_recipm1_alphas_cumprod": torch.sqrt(1.0 / abar - 1),
            "posterior_variance": posterior_variance,
            "posterior_log_variance_clipped": torch.log(posterior_variance.clamp(min=1e-20)),
            "posterior_mean_coef1": betas * torch.sqrt(abar_prev) / (1.0 - abar),
            "posterior_mean_coef2": (1.0 - abar_prev) * torch.sqrt(alphas) / (1.0 - abar),
            "p2_loss_weight": torch.ones_like(betas),  # p2 gamma 0
        }
        for name, value in buffers.items():
            self.register_buffer(name, value.float())

    @staticmethod
    def at(buffer: Tensor, t: Tensor, like: Tensor) -> Tensor:
        return buffer.gather(0, t).reshape(-1, *([1] * (like.dim() - 1))).to(like.dtype)


class BrainDiffusionPrior(nn.Module):
    """x0-predicting DDPM over CLIP tokens conditioned on brain tokens (MindEye2 ``BrainDiffusionPrior``).

    ``forward(cond, target)`` returns ``(mse_loss, x0_prediction)`` at random timesteps with condition dropout;
    ``p_sample_loop(cond, timesteps)`` samples (stochastic DDIM, eta = 1, when ``timesteps < num_timesteps``;
    the full ancestral DDPM loop otherwise). No ``image_embed_scale`` is applied anywhere (as the brain subclass).
    """

    def __init__(
        self,
        net: PriorNetwork,
        timesteps: int = 100,
        cond_drop_prob: float = 0.2,
        image_drop_prob: float | None = None,
        ddim_eta: float = 1.0,
    ) -> None:
        super().__init__()
        self.noise_scheduler = NoiseScheduler(timesteps)  # created first: its keys precede ``net.*`` upstream
        self.net = net
        self.cond_drop_prob = cond_drop_prob
        self.image_drop_prob = cond_drop_prob if image_drop_prob is None else image_drop_prob
        self.ddim_eta = ddim_eta

    @property
    def num_timesteps(self) -> int:
        return self.noise_scheduler.num_timesteps

    def forward(
        self,
        cond: Tensor,
        target: Tensor,
        generator: torch.Generator | None = None,
        timesteps: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Training loss. RNG order as upstream: timesteps (randint), noise (randn), cond mask, image mask."""
        sched = self.noise_scheduler
        batch, device = target.shape[0], target.device
        if timesteps is None:
            timesteps = torch.randint(0, self.num_timesteps, (batch,), device=device, generator=generator)
        noise = torch.randn(target.shape, device=device, dtype=target.dtype, generator=generator)
        noisy = (
            sched.at(sched.sqrt_alphas_cumprod, timesteps, target) * target
            + sched.at(sched.sqrt_one_minus_alphas_cumprod, timesteps, target) * noise
        )
        pred = self.net(
            noisy,
            timesteps,
            cond,
            cond_drop_prob=self.cond_drop_prob,
            image_drop_prob=self.image_drop_prob,
            generator=generator,
        )
        return F.mse_loss(pred, target), pred

    @torch.no_grad()
    def p_sample_loop(
        self,
        cond: Tensor,
        timesteps: int = 20,
        cond_scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Sample clean tokens of the condition's shape (B, num_tokens, dim). With ``generator=None`` the global
        RNG is consumed in upstream order (one start draw, then one per non-final step)."""
        shape = (cond.shape[0], self.net.num_tokens, self.net.dim)
        x = torch.randn(shape, device=cond.device, dtype=cond.dtype, generator=generator)
        if timesteps is None or timesteps >= self.num_timesteps:
            return self._ddpm_loop(x, cond, cond_scale, generator)
        return self._ddim_loop(x, cond, timesteps, cond_scale, generator)

    def _ddim_loop(
        self, x: Tensor, cond: Tensor, steps: int, cond_scale: float, generator: torch.Generator | None
    ) -> Tensor:
        sched = self.noise_scheduler
        grid = torch.linspace(-1.0, float(self.num_timesteps), steps + 1)[:-1]
        times = list(reversed(grid.int().tolist()))  # e.g. 94, 89, ..., 4, -1 for 20 of 100
        for t, t_next in zip(times[:-1], times[1:]):
            batched = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
            x0 = self.net.forward_with_cond_scale(x, batched, cond, cond_scale=cond_scale)
            # implied noise uses abar[t]; the DDIM coefficients use the "prev" array (upstream behaviour)
            eps = (sched.at(sched.sqrt_recip_alphas_cumprod, batched, x) * x - x0) / sched.at(
                sched.sqrt_recipm1_alphas_cumprod, batched, x
            )
            if t_next < 0:
                x = x0
                continue
            a = sched.alphas_cumprod_prev[t]
            a_next = sched.alphas_cumprod_prev[t_next]
            c1 = self.ddim_eta * ((1 - a / a_next) * (1 - a_next) / (1 - a)).sqrt()
            c2 = ((1 - a_next) - c1**2).sqrt()
            noise = (
                torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
                if t_next > 0
                else 0.0
            )
            x = x0 * a_next.sqrt().to(x.dtype) + c1.to(x.dtype) * noise + c2.to(x.dtype) * eps
        return x

    def _ddpm_loop(
        self, x: Tensor, cond: Tensor, cond_scale: float, generator: torch.Generator | None
    ) -> Tensor:
        sched = self.noise_scheduler
        for i in reversed(range(self.num_timesteps)):
            t = torch.full((x.shape[0],), i, device=x.device, dtype=torch.long)
            x0 = self.net.forward_with_cond_scale(x, t, cond, cond_scale=cond_scale)
            mean = (
                sched.at(sched.posterior_mean_coef1, t, x) * x0
                + sched.at(sched.posterior_mean_coef2, t, x) * x
            )
            noise = torch.randn(
                x.shape, device=x.device, dtype=x.dtype, generator=generator
            )  # drawn at i = 0 too
            std = (0.5 * sched.at(sched.posterior_log_variance_clipped, t, x)).exp()
            x = mean + (0.0 if i == 0 else 1.0) * std * noise
        return x
