"""Multi-fMRI fusion (method.md §7.3, paper §3.4): longer videos from consecutive clips of the same scene.

For neighbouring test clips k, k+1 (consecutive clip indices in the same movie segment) decide "same scene/object"
from the CLIP image embeddings of their reconstructed keyframes: cosine ≥ threshold (default), or a shallow MLP
trained on training-clip pairs (the paper's option; its architecture is not published, ours is documented here).
When they match, the last frame of clip k's (fused) video replaces clip k+1's keyframe as the SparseCtrl
frame-0 condition and clip k+1 is generated again; runs of linked clips form the fused long videos.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

DECISIONS = ("cosine", "mlp")


def pair_features(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Symmetric features of an embedding pair: [|a − b|, a ⊙ b]."""
    return torch.cat([(a - b).abs(), a * b], dim=-1)


class PairClassifier(nn.Module):
    """Shallow MLP on ``pair_features``: logit of "same scene/object"."""

    def __init__(self, dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * dim, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.net(pair_features(a, b)).squeeze(-1)


def train_pair_classifier(
    embeddings: torch.Tensor,
    same: torch.Tensor,
    hidden: int = 64,
    epochs: int = 200,
    lr: float = 1e-2,
    seed: int = 0,
) -> PairClassifier:
    """Fit on consecutive pairs (embeddings[i], embeddings[i+1]) with labels ``same[i]`` (full-batch AdamW,
    class-balanced BCE)."""
    if len(same) != len(embeddings) - 1:
        raise ValueError(f"fusion MLP: expected {len(embeddings) - 1} pair labels, found {len(same)}.")
    gen = torch.Generator().manual_seed(seed)
    clf = PairClassifier(embeddings.shape[1], hidden)
    with torch.no_grad():
        for p in clf.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (p.shape[-1] ** -0.5))
    a, b, y = embeddings[:-1].float(), embeddings[1:].float(), same.float()
    pos = y.mean().clamp(1e-3, 1 - 1e-3)
    weight = torch.where(y > 0, 0.5 / pos, 0.5 / (1 - pos))
    opt = torch.optim.AdamW(clf.parameters(), lr=lr)
    with torch.enable_grad():
        for _ in range(epochs):
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(clf(a, b), y, weight=weight)
            loss.backward()
            opt.step()
    return clf.eval()


def neighbour_pairs(clip_indices: Sequence[int], segments: Sequence[int]) -> list[tuple[int, int]]:
    """Positions (i, i+1) of clips that follow each other in the movie (consecutive index, same segment)."""
    return [
        (i, i + 1)
        for i in range(len(clip_indices) - 1)
        if clip_indices[i + 1] == clip_indices[i] + 1 and segments[i + 1] == segments[i]
    ]


def decide_links(
    embeddings: torch.Tensor,
    pairs: Sequence[tuple[int, int]],
    decision: str = "cosine",
    threshold: float = 0.9,
    classifier: PairClassifier | None = None,
) -> tuple[list[bool], list[float]]:
    """For each pair: linked?, and its score (cosine similarity, or the MLP's probability)."""
    if decision not in DECISIONS:
        raise ValueError(f"fusion.decision: expected one of {DECISIONS}, found {decision!r}.")
    if not pairs:
        return [], []
    a = embeddings[[i for i, _ in pairs]]
    b = embeddings[[j for _, j in pairs]]
    if decision == "cosine":
        scores = F.cosine_similarity(a, b, dim=-1)
        return (scores >= threshold).tolist(), scores.tolist()
    if classifier is None:
        raise ValueError("fusion.decision=mlp needs a trained pair classifier.")
    with torch.no_grad():
        prob = torch.sigmoid(classifier(a.float(), b.float()))
    return (prob >= 0.5).tolist(), prob.tolist()


def fusion_groups(num_clips: int, links: dict[int, bool], max_clips: int | None = None) -> list[list[int]]:
    """Runs of positions joined by links (``links[i]`` joins position i to i+1), at most ``max_clips`` long."""
    groups, current = [], [0] if num_clips else []
    for i in range(1, num_clips):
        if links.get(i - 1, False) and (max_clips is None or len(current) < max_clips):
            current.append(i)
        else:
            groups.append(current)
            current = [i]
    if current:
        groups.append(current)
    return groups
