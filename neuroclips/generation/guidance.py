"""α guidance: how the blurry video's latent z initialises the video sampler (method.md §7.2 step 4).

Modes (``alpha_mode``):

* ``code_t0`` (reference code, the default): z_T = add_noise(z, ε, t*) with t* the *first* DDIM timestep
  (961 for 25 steps); all steps run. Signal weight √ᾱ_t* ≈ 0.050. The reference's ``low_strength = 0.3`` only
  selects t* = timesteps[:t_start][0], which is always the first timestep.
* ``paper_theta`` (paper Eq. 5): z_T = √(ᾱ_T/ᾱ_ϑT)·z + √(1 − ᾱ_T/ᾱ_ϑT)·ε with T = num_train_timesteps − 1 and
  ϑT = ⌊ϑ·T⌋; all steps run. Signal weight √(ᾱ_999/ᾱ_299) ≈ 0.058 for ϑ = 0.3.
* ``sdedit``: keep only the last ⌊steps·strength⌋ DDIM timesteps and noise z to the first kept one.
* ``none``: z_T = ε (no blurry video), all steps run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler

ALPHA_MODES = ("code_t0", "paper_theta", "sdedit", "none")


@dataclass(frozen=True)
class AlphaPlan:
    """Where sampling starts and how much of the blurry latent survives in z_T."""

    mode: str
    start_timestep: int  # the first timestep the sampler runs
    keep_steps: int  # how many of the scheduler's timesteps run (the last ones)
    signal_weight: float  # coefficient of z in z_T
    noise_weight: float  # coefficient of ε in z_T


class TruncatedDDIMScheduler(DDIMScheduler):
    """DDIM whose ``set_timesteps`` keeps only the last ``keep_last`` timesteps (true SDEdit).

    DDIM's step derives the previous timestep from ``num_inference_steps``, not from the list, so truncating the
    list leaves the remaining steps exactly as in a full run.
    """

    keep_last: int | None = None

    def set_timesteps(self, num_inference_steps: int, device=None):
        super().set_timesteps(num_inference_steps, device=device)
        if self.keep_last is not None:
            self.timesteps = self.timesteps[len(self.timesteps) - self.keep_last :]


def plan_alpha(
    scheduler: DDIMScheduler, num_steps: int, mode: str, theta: float = 0.3, strength: float = 0.3
) -> AlphaPlan:
    """Compute the α plan for ``mode`` from the scheduler's ᾱ table (does not change the scheduler's state)."""
    if mode not in ALPHA_MODES:
        raise ValueError(f"video alpha_mode: expected one of {ALPHA_MODES}, found {mode!r}.")
    probe = DDIMScheduler.from_config(scheduler.config)
    probe.set_timesteps(num_steps)
    timesteps = [int(t) for t in probe.timesteps]
    alphas_cumprod = probe.alphas_cumprod.double()
    if mode == "none":
        return AlphaPlan(mode, timesteps[0], num_steps, 0.0, 1.0)
    if mode == "code_t0":
        a = float(alphas_cumprod[timesteps[0]])
        return AlphaPlan(mode, timesteps[0], num_steps, a**0.5, (1.0 - a) ** 0.5)
    if mode == "paper_theta":
        last = probe.config.num_train_timesteps - 1
        ratio = float(alphas_cumprod[last] / alphas_cumprod[int(theta * last)])
        return AlphaPlan(mode, timesteps[0], num_steps, ratio**0.5, (1.0 - ratio) ** 0.5)
    keep = int(num_steps * strength)
    if not 0 < keep <= num_steps:
        raise ValueError(
            f"video sdedit strength: expected it to keep 1..{num_steps} steps, found {strength}."
        )
    a = float(alphas_cumprod[timesteps[num_steps - keep]])
    return AlphaPlan(mode, timesteps[num_steps - keep], keep, a**0.5, (1.0 - a) ** 0.5)


def initial_latents(
    plan: AlphaPlan, blurry_latents: torch.Tensor | None, noise: torch.Tensor
) -> torch.Tensor:
    """z_T = signal·z + noise·ε (computed in float64 for the coefficients, returned in ``noise``'s dtype)."""
    if plan.mode == "none" or blurry_latents is None:
        if plan.mode != "none":
            raise ValueError(
                f"video alpha_mode {plan.mode!r} needs the blurry video's latents; none were given."
            )
        return noise
    return (plan.signal_weight * blurry_latents + plan.noise_weight * noise).to(noise.dtype)


def sampling_scheduler(scheduler: DDIMScheduler, plan: AlphaPlan) -> DDIMScheduler:
    """The scheduler the pipeline should use for ``plan``: the same one, or a truncated copy for sdedit."""
    if plan.mode != "sdedit":
        return scheduler
    truncated = TruncatedDDIMScheduler.from_config(scheduler.config)
    truncated.keep_last = plan.keep_steps
    return truncated
