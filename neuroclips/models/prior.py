"""Diffusion prior with MindEye2's ``BrainDiffusionPrior`` / ``PriorNetwork`` semantics and state-dict layout.

Written from mindeye2-layout.md §2, §4, §6, §7 (dalle2-pytorch 1.15.6 behaviour as used by MindEye2/NeuroClips):
a non-causal transformer over [condition tokens | time token | noisy image tokens], cosine-similarity multi-query
attention with a null key/value, T5 relative-position bias, partial rotary embedding, SwiGLU feed-forward,
x0 prediction with a 100-step cosine schedule and classifier-free-guidance dropout with learned null tables. The
transformer and its layers are in ``neuroclips.models.prior_transformer``.

Keys (inside ``BrainDiffusionPrior``): ``noise_scheduler.<13 buffers>``, ``net.learned_query``,
``net.null_brain_embeds``, ``net.null_image_embed``, ``net.to_time_embeds.0.1.net.*``,
``net.causal_transformer.{rel_pos_bias.*, layers.<i>.{0,1}.*, norm.g, project_out.weight}``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroclips.models.prior_transformer import PriorTransformer, SinusoidalTimeEmbedding, TimeMLP, Unflatten1


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
