"""CLIP-pcc ("ST-level" temporal consistency) from per-frame CLIP image embeddings of the reconstruction.

* ``adjacent`` -- NEURONS ``compute_clip_pcc`` and the NeuroClips paper text: cosine similarity of each adjacent pair
  of frames (i, i+1). NEURONS reports the mean and std over *all pairs of all clips*; Mind-Animator averages per clip
  first (same mean when every clip has the same frame count, different std). Mind-Animator additionally forces a
  clip's score to 0 when its ViFi-CLIP video similarity (VIFI-score, ``neuroclips.evaluation.vifi_clip``) is <= 0.6
  (``gate_scores``; the ``mind_animator`` preset passes the suite's VIFI-scores).
* ``all_pairs`` -- NEURONS ``clip_score_frame`` (CLIP ViT-L/14; the NEURONS runner reports it, and only it, since
  its commit 79f9346 of 2025-04-29): per clip, the mean cosine over all ordered off-diagonal pairs
  (diagonal set to 0, sum divided by F*(F-1)); mean and std over clips.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CLIP_PCC_VARIANTS = ("adjacent", "all_pairs")
MIND_ANIMATOR_VIFI_GATE = 0.6  # Mind-Animator: clip score is 0 when ViFi-CLIP similarity <= this bar


def adjacent_pair_similarity(embeddings: torch.Tensor) -> torch.Tensor:
    """(B, F, D) embeddings -> (B, F-1) cosine similarity of frames i and i+1."""
    _check(embeddings)
    e = F.normalize(embeddings.double(), dim=-1)
    return (e[:, :-1] * e[:, 1:]).sum(-1)


def all_pairs_similarity(embeddings: torch.Tensor) -> torch.Tensor:
    """(B, F, D) embeddings -> (B,) mean cosine over all ordered pairs i != j."""
    _check(embeddings)
    e = F.normalize(embeddings.double(), dim=-1)
    sim = e @ e.transpose(1, 2)
    num_frames = e.shape[1]
    off_diagonal = sim.sum((1, 2)) - sim.diagonal(dim1=1, dim2=2).sum(-1)
    return off_diagonal / (num_frames * (num_frames - 1))


def pair_similarities(embeddings: torch.Tensor, variant: str = "adjacent") -> torch.Tensor:
    """(B, P) the cosine of every pair a variant averages: ``adjacent`` (B, F-1) pairs (i, i+1); ``all_pairs``
    (B, F*(F-1)) every ordered pair i != j (row-major). Aggregations (``aggregate.py``) start from these."""
    if variant == "adjacent":
        return adjacent_pair_similarity(embeddings)
    if variant != "all_pairs":
        raise ValueError(f"CLIP-pcc variant: expected one of {CLIP_PCC_VARIANTS}, found {variant!r}.")
    _check(embeddings)
    e = F.normalize(embeddings.double(), dim=-1)
    sim = e @ e.transpose(1, 2)
    num_frames = e.shape[1]
    off = ~torch.eye(num_frames, dtype=torch.bool)
    return sim[:, off]


def clip_pcc_per_clip(
    embeddings: torch.Tensor,
    variant: str = "adjacent",
    gate_scores: torch.Tensor | None = None,
    gate_threshold: float = MIND_ANIMATOR_VIFI_GATE,
) -> torch.Tensor:
    """(B,) per-clip CLIP-pcc; with ``gate_scores`` (B,) a clip scoring <= ``gate_threshold`` counts as 0."""
    if variant == "adjacent":
        per_clip = adjacent_pair_similarity(embeddings).mean(1)
    elif variant == "all_pairs":
        per_clip = all_pairs_similarity(embeddings)
    else:
        raise ValueError(f"CLIP-pcc variant: expected one of {CLIP_PCC_VARIANTS}, found {variant!r}.")
    if gate_scores is not None:
        per_clip = torch.where(
            gate_scores.to(per_clip) <= gate_threshold, torch.zeros_like(per_clip), per_clip
        )
    return per_clip


def _check(embeddings: torch.Tensor) -> None:
    if embeddings.ndim != 3 or embeddings.shape[1] < 2:
        raise ValueError(
            f"CLIP-pcc: expected embeddings (clips, frames >= 2, dim), found shape {tuple(embeddings.shape)}."
        )


def clip_pcc_score(embeddings: torch.Tensor, variant: str = "adjacent") -> tuple[float, float]:
    """The reported (mean, std): ``adjacent`` over all adjacent pairs of all clips (NEURONS ``compute_clip_pcc``),
    ``all_pairs`` over clips (NEURONS ``clip_score_frame``)."""
    if variant == "adjacent":
        values = adjacent_pair_similarity(embeddings).flatten()
    else:
        values = clip_pcc_per_clip(embeddings, variant)
    return float(values.mean()), float(values.std(unbiased=False))
