"""Top-1 retrieval for Semantic Reconstructor outputs (NeuroClips Table 4, MindEye-style).

Forward: for each fMRI embedding, is its own keyframe's CLIP embedding the most similar among the candidates?
Backward: the same from keyframe to fMRI. NeuroClips reports top-1 among 300 candidates, averaged over the 4
consecutive blocks of 300 of the 1200 test clips.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

RETRIEVAL_POOL = 300  # candidates per block (NeuroClips Table 4: "top-1 out of 300")


@dataclass(frozen=True)
class RetrievalResult:
    forward: float  # fMRI -> keyframe top-1 accuracy
    backward: float  # keyframe -> fMRI top-1 accuracy
    blocks: int


def retrieval_top1(
    brain: torch.Tensor, image: torch.Tensor, pool_size: int | None = RETRIEVAL_POOL
) -> RetrievalResult:
    """brain, image: (N, ...) embeddings, row i of each belonging to clip i. Flattened and L2-normalised.

    The N clips are cut into consecutive blocks of ``pool_size`` (a last partial block is dropped, as in the
    reference; ``None`` uses all N as one pool); accuracies are averaged over blocks.
    """
    if brain.shape[0] != image.shape[0]:
        raise ValueError(
            f"Retrieval: expected as many brain as image embeddings, found {brain.shape[0]} and {image.shape[0]}."
        )
    b = F.normalize(brain.flatten(1).double(), dim=-1)
    i = F.normalize(image.flatten(1).double(), dim=-1)
    n = b.shape[0]
    size = n if pool_size is None or pool_size > n else pool_size
    if size < 2:
        raise ValueError(f"Retrieval: need at least 2 clips per pool, found {size}.")
    fwd, bwd, blocks = 0.0, 0.0, 0
    for start in range(0, n - size + 1, size):
        sim = b[start : start + size] @ i[start : start + size].T
        target = torch.arange(size)
        fwd += (sim.argmax(1) == target).double().mean().item()
        bwd += (sim.argmax(0) == target).double().mean().item()
        blocks += 1
    return RetrievalResult(forward=fwd / blocks, backward=bwd / blocks, blocks=blocks)
