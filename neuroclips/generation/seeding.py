"""Per-clip random streams: every random draw of a clip comes from a generator seeded by (seed, clip_index, purpose).

The reference re-seeds one global RNG with the same literal before every clip and lets draws for different purposes
(VAE samples, crop parameters, α noise) follow each other on it. Here each purpose has its own stream, so a clip's
output depends only on the run seed, its clip index and its inputs: not on batch size, rank count or order.
All generators live on the CPU and tensors are moved afterwards, so a seed gives the same numbers on every device.
"""

from __future__ import annotations

import hashlib
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
