"""Per-clip random streams: every random draw of a clip comes from a generator seeded by (seed, clip_index, purpose).

The reference re-seeds one global RNG with the same literal before every clip and lets draws for different purposes
(VAE samples, crop parameters, α noise) follow each other on it. Here each purpose has its own stream, so a clip's
output depends only on the run seed, its clip index and its inputs: not on batch size, rank count or order.
All generators live on the CPU and tensors are moved afterwards, so a seed gives the same numbers on every device.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import torch

# The reference's fixed video seed (Animatediff/configs/NeuroClips/control.yaml); the default run seed for video.
REFERENCE_VIDEO_SEED = 12099779162349365895


def clip_seed(seed: int, clip_index: int, purpose: str, per_clip: bool = True) -> int:
    """A 63-bit seed for one clip and purpose.

    ``per_clip=False`` reproduces the reference's "same seed for every clip" behaviour (the clip index is ignored).
    """
    key = f"{int(seed)}|{int(clip_index) if per_clip else 'all'}|{purpose}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1


def clip_generators(
    seed: int, clip_indices: Sequence[int] | torch.Tensor, purpose: str, per_clip: bool = True
) -> list[torch.Generator]:
    """One CPU generator per clip for ``purpose``."""
    indices = clip_indices.tolist() if isinstance(clip_indices, torch.Tensor) else list(clip_indices)
    return [torch.Generator("cpu").manual_seed(clip_seed(seed, i, purpose, per_clip)) for i in indices]


def randn_per_clip(
    shape: Sequence[int],
    generators: Sequence[torch.Generator],
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Stack one standard-normal draw of ``shape`` per generator: (len(generators), *shape)."""
    draws = [torch.randn(tuple(shape), generator=g, dtype=torch.float32) for g in generators]
    return torch.stack(draws).to(device=device, dtype=dtype)


# ---- the reference's streams (recipe=reference) ------------------------------------------------------------------

SEEDINGS = ("streams", "reference")


def check_seeding(field: str, seeding: str) -> None:
    if seeding not in SEEDINGS:
        raise ValueError(f"{field}: expected one of {SEEDINGS}, found {seeding!r}.")


class ReferenceRNG:
    """The random streams ``torch.manual_seed(seed)`` gives the reference scripts, as explicit generators.

    ``torch.manual_seed`` seeds the CPU generator and every CUDA device's alike. The reference then draws tensors
    made on the GPU (VAE samples, noise, random tokens) from the device's generator and tensors made on the CPU
    (torchvision's crop parameters, the unCLIP base latent ``torch.randn(...).to(device)``) from the CPU one. Here
    both are generators seeded the same way (a single generator when the device is the CPU, as in a CPU run of the
    reference), so the numbers equal the reference's global draws in the same order and the process's global RNG
    is left alone. Unlike the per-clip streams, these depend on the device and on the order of the draws.
    """

    def __init__(self, seed: int, device: torch.device | str = "cpu") -> None:
        self.seed, self.device = int(seed), torch.device(device)
        self.cpu = torch.Generator("cpu").manual_seed(self.seed)
        if self.device.type == "cpu":
            self.on_device = self.cpu
        else:
            self.on_device = torch.Generator(self.device).manual_seed(self.seed)

    def randn(self, shape: Sequence[int], on_cpu: bool = False) -> torch.Tensor:
        """A float32 standard-normal draw made where the reference makes it, returned on ``self.device``."""
        if on_cpu:
            return torch.randn(tuple(shape), generator=self.cpu).to(self.device)
        return torch.randn(tuple(shape), generator=self.on_device, device=self.device)

    def full_resized_crop_draws(self, aspect_ratio: float = 1.0) -> None:
        """The CPU draws of torchvision's ``RandomResizedCrop.get_params`` with scale (1, 1) and a fixed ratio, which
        the reference video script applies to the keyframe PNG: two uniforms (area, log-ratio) and two randints
        (top, left), whose values do not matter (the crop is the whole image) but which advance the CPU stream."""
        log_ratio = math.log(aspect_ratio)
        torch.empty(1).uniform_(1.0, 1.0, generator=self.cpu)
        torch.empty(1).uniform_(log_ratio, log_ratio, generator=self.cpu)
        torch.randint(0, 1, (1,), generator=self.cpu)
        torch.randint(0, 1, (1,), generator=self.cpu)


def reference_video_draws(
    seed: int, num_frames: int, latent_shape: Sequence[int], device: torch.device | str = "cpu"
) -> dict[str, torch.Tensor]:
    """One clip's random draws in Animatediff/scripts/neuroclips.py, which calls ``torch.manual_seed(seed)`` with the
    same literal before every clip: (1) the blurry video's VAE sample (F frames), (2) the keyframe repeated F times,
    VAE-sampled into ``keylatents`` that the pipeline never uses, (3) ``RandomResizedCrop`` on the keyframe PNG
    (CPU), (4) the keyframe's VAE sample for SparseCtrl, (5) the α noise ``randn_like(latents)`` in the pipeline.
    DDIM with η = 0 draws nothing per step. ``latent_shape`` = (C, h, w) of one frame's VAE latent.
    Returns ``blurry_vae`` (F, C, h, w), ``keyframe_vae`` (1, C, h, w), ``alpha_noise`` (C, F, h, w)."""
    rng = ReferenceRNG(seed, device)
    c, h, w = latent_shape
    blurry = rng.randn((num_frames, c, h, w))
    rng.randn((num_frames, c, h, w))  # keylatents: dead code in the reference, but it advances the stream
    rng.full_resized_crop_draws()
    keyframe = rng.randn((1, c, h, w))
    alpha = rng.randn((1, c, num_frames, h, w))[0]
    return {"blurry_vae": blurry, "keyframe_vae": keyframe, "alpha_noise": alpha}
