"""N-way top-K semantic accuracy (the MinD-Video classifier protocol), vectorised, seeded, exact to the reference.

A frozen classifier scores the ground-truth (GT) and the reconstructed frame or clip. Per sample:

1. GT classes: the ``num_gt_classes`` largest GT *logits* (``mindvideo``: 3, ``strict``: 1).
2. Scores: softmax of the reconstruction's logits (computed in the dtype of the logits given, as the reference
   does in fp16 on GPU).
3. One trial draws N-1 distinct distractor classes uniformly from the classes that are not GT classes; the trial is
   correct if, for any GT class, that class's score is among the K highest of [GT score, N-1 distractor scores].
   Exact ties (``ties``): ``distractor_wins`` (default) counts a tie against the GT class -- a stable ascending
   sort puts the GT candidate, listed first, below equal distractors, so a trial is correct iff fewer than K
   distractors score >= the GT score; this is the rule the reference loop in tests/test_eval_metrics.py restates.
   ``gt_wins`` gives exact ties to the GT candidate (correct iff fewer than K distractors score > it): what an
   ``argmax``/``topk`` that returns the first of equal maxima does with the GT listed first, as torchmetrics'
   top-1 ``accuracy`` call in the MinD-Video code resolves them. Ties are rare with fp32 softmax scores and common
   with fp16 ones (many near-zero probabilities round to the same half-precision value).
4. Sample accuracy = correct trials / trials; sample std = sqrt(p(1-p)/trials) (binomial). The reported value is the
   mean over samples and the reported +- is the mean of the sample stds.

Randomness: the reference draws with numpy's global legacy RNG, ``np.random.choice(pick_range, N-1, replace=False)``
once per trial, samples in order. ``sampler="reference"`` draws the same calls from ``np.random.RandomState(seed)``,
so with the same seed it reproduces the reference loop trial for trial. ``sampler="vectorized"`` draws all trials at
once with a torch generator (same distribution, different stream, much faster). ``sampler="exact"`` replaces the
trials by the exact success probability (hypergeometric), i.e. the limit of infinitely many trials; its std is still
the binomial std at ``num_trials`` so the +- stays comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import hypergeom

# protocol name -> number of ground-truth classes accepted as correct
NWAY_PROTOCOLS = {"mindvideo": 3, "strict": 1}
NWAY_SAMPLERS = ("reference", "vectorized", "exact")
NWAY_TIES = ("distractor_wins", "gt_wins")


@dataclass(frozen=True)
class NWayResult:
    """Per-sample accuracies and binomial stds; ``mean`` and ``std`` are the reported value and +-."""

    accuracy: np.ndarray  # (B,) fraction of correct trials per sample
    std: np.ndarray  # (B,) sqrt(p(1-p)/trials)
    gt_classes: np.ndarray  # (B, G) GT class indices per sample

    @property
    def mean(self) -> float:
        return float(self.accuracy.mean()) if self.accuracy.size else float("nan")

    @property
    def mean_std(self) -> float:
        return float(self.std.mean()) if self.std.size else float("nan")


def ground_truth_classes(gt_logits: torch.Tensor, num_gt_classes: int) -> torch.Tensor:
    """Indices (B, G) of the G largest GT logits, in the reference's order (ascending argsort, last G)."""
    return gt_logits.argsort(dim=-1, descending=False, stable=True)[:, -num_gt_classes:]


def nway_topk(
    gt_logits: torch.Tensor,
    pred_logits: torch.Tensor,
    n_way: int,
    top_k: int = 1,
    num_trials: int = 100,
    protocol: str = "mindvideo",
    sampler: str = "reference",
    rng: np.random.RandomState | int | None = 0,
    ties: str = "distractor_wins",
) -> NWayResult:
    """N-way top-K accuracy per sample from classifier logits (B, C) of the GT and of the reconstruction.

    ``rng``: a ``np.random.RandomState`` to continue (the reference consumes one stream across frame positions), or a
    seed. For ``sampler="vectorized"`` an int seed seeds a torch generator.
    """
    if protocol not in NWAY_PROTOCOLS:
        raise ValueError(f"N-way protocol: expected one of {sorted(NWAY_PROTOCOLS)}, found {protocol!r}.")
    if sampler not in NWAY_SAMPLERS:
        raise ValueError(f"N-way sampler: expected one of {NWAY_SAMPLERS}, found {sampler!r}.")
    if ties not in NWAY_TIES:
        raise ValueError(f"N-way ties: expected one of {NWAY_TIES}, found {ties!r}.")
    if gt_logits.ndim != 2 or gt_logits.shape != pred_logits.shape:
        raise ValueError(
            f"N-way: expected gt and pred logits of the same shape (B, C), found {tuple(gt_logits.shape)} "
            f"and {tuple(pred_logits.shape)}."
        )
    num_gt = NWAY_PROTOCOLS[protocol]
    num_classes = gt_logits.shape[1]
    if not top_k < n_way <= num_classes - num_gt + 1:
        raise ValueError(
            f"N-way: expected top_k < n_way <= classes - gt classes + 1, found top_k={top_k}, n_way={n_way}, "
            f"{num_classes} classes, {num_gt} GT classes."
        )
    gt_cls = ground_truth_classes(gt_logits.detach().cpu(), num_gt)
    scores = pred_logits.detach().softmax(dim=-1).cpu()
    if sampler == "reference":
        acc = _reference_trials(scores, gt_cls, n_way, top_k, num_trials, _as_random_state(rng), ties)
    elif sampler == "vectorized":
        acc = _vectorized_trials(scores, gt_cls, n_way, top_k, num_trials, rng, ties)
    else:
        acc = _exact_probability(scores, gt_cls, n_way, top_k, ties)
    std = np.sqrt(acc * (1.0 - acc) / num_trials)
    return NWayResult(accuracy=acc, std=std, gt_classes=gt_cls.numpy())


def _as_random_state(rng: np.random.RandomState | int | None) -> np.random.RandomState:
    if isinstance(rng, np.random.RandomState):
        return rng
    return np.random.RandomState(rng)


def _pool_mask(num_samples: int, num_classes: int, gt_cls: torch.Tensor) -> torch.Tensor:
    """(B, C) True for classes that may serve as distractors (every class that is not a GT class)."""
    mask = torch.ones(num_samples, num_classes, dtype=torch.bool)
    mask.scatter_(1, gt_cls, False)
    return mask


def _beats(d: torch.Tensor, g: torch.Tensor, ties: str) -> torch.Tensor:
    """Distractor scores that rank above a GT score under the tie rule."""
    return d >= g if ties == "distractor_wins" else d > g


def _count_correct(
    scores_b: torch.Tensor,
    gt_b: torch.Tensor,
    distractors: torch.Tensor,
    top_k: int,
    ties: str = "distractor_wins",
) -> torch.Tensor:
    """Trials (T,) correct for one sample: any GT class with fewer than K distractors ranking above it."""
    d = scores_b[distractors]  # (T, N-1)
    g = scores_b[gt_b]  # (G,)
    beaten_by = _beats(d.unsqueeze(1), g.view(1, -1, 1), ties).sum(-1)  # (T, G)
    return (beaten_by < top_k).any(dim=1)


def _reference_trials(
    scores, gt_cls, n_way, top_k, num_trials, rs: np.random.RandomState, ties: str = "distractor_wins"
) -> np.ndarray:
    num_samples, num_classes = scores.shape
    pool_mask = _pool_mask(num_samples, num_classes, gt_cls)
    acc = np.empty(num_samples)
    for b in range(num_samples):
        pick_range = np.flatnonzero(pool_mask[b].numpy())  # ascending, like the reference list comprehension
        # rs.choice(pick_range, N-1, replace=False) is pick_range[rs.permutation(len)[:N-1]]: same stream, less overhead
        picks = pick_range[
            np.stack([rs.permutation(len(pick_range))[: n_way - 1] for _ in range(num_trials)])
        ]
        correct = _count_correct(scores[b], gt_cls[b], torch.from_numpy(picks), top_k, ties)
        acc[b] = correct.sum().item() / num_trials
    return acc


def _vectorized_trials(
    scores,
    gt_cls,
    n_way,
    top_k,
    num_trials,
    seed: np.random.RandomState | int | None,
    ties: str = "distractor_wins",
) -> np.ndarray:
    num_samples, num_classes = scores.shape
    if isinstance(seed, np.random.RandomState):
        seed = seed.randint(2**31 - 1)  # continue a shared stream deterministically
    gen = torch.Generator()
    gen.manual_seed(int(seed)) if seed is not None else gen.seed()
    pool_mask = _pool_mask(num_samples, num_classes, gt_cls)
    acc = np.empty(num_samples)
    for b in range(num_samples):
        pool = pool_mask[b].nonzero().squeeze(1)
        keys = torch.rand(num_trials, pool.numel(), generator=gen)
        picks = pool[keys.topk(n_way - 1, dim=1).indices]  # N-1 distinct uniform picks per trial
        acc[b] = _count_correct(scores[b], gt_cls[b], picks, top_k, ties).float().mean().item()
    return acc


def _exact_probability(scores, gt_cls, n_way, top_k, ties: str = "distractor_wins") -> np.ndarray:
    """P(trial correct). The sets {distractors >= GT score} are nested, so success for any GT class is success for
    the GT class with the highest score: fewer than K of the N-1 draws come from the M' pool classes scoring >= it."""
    num_samples, num_classes = scores.shape
    pool_mask = _pool_mask(num_samples, num_classes, gt_cls)
    best_gt = scores.gather(1, gt_cls).max(dim=1, keepdim=True).values
    beating = (_beats(scores, best_gt, ties) & pool_mask).sum(1).numpy()
    pool_size = int(num_classes - gt_cls.shape[1])
    return hypergeom.cdf(top_k - 1, pool_size, beating, n_way - 1).astype(np.float64)


def nway_topk_frames(
    gt_logits: torch.Tensor,
    pred_logits: torch.Tensor,
    n_way: int,
    top_k: int = 1,
    num_trials: int = 100,
    protocol: str = "mindvideo",
    sampler: str = "reference",
    seed: int | None = 0,
    ties: str = "distractor_wins",
    return_std: bool = False,
):
    """Frame-level N-way as the reference runner reports it, from logits (N, F, C): each frame position is scored
    over the clips (one RNG stream continued across positions), the value is the mean over positions of the mean
    over clips, the +- the mean over positions of the mean binomial std. Also returns accuracies (N, F) (and, with
    ``return_std``, the binomial stds (N, F))."""
    if gt_logits.ndim != 3:
        raise ValueError(
            f"N-way frames: expected logits (clips, frames, classes), found {tuple(gt_logits.shape)}."
        )
    rng = np.random.RandomState(seed)
    acc = np.zeros(gt_logits.shape[:2])
    std = np.zeros(gt_logits.shape[:2])
    for pos in range(gt_logits.shape[1]):
        stream = rng if sampler == "reference" else (None if seed is None else seed + pos)
        r = nway_topk(
            gt_logits[:, pos], pred_logits[:, pos], n_way, top_k, num_trials, protocol, sampler, stream, ties
        )
        acc[:, pos], std[:, pos] = r.accuracy, r.std
    if return_std:
        return float(acc.mean(0).mean()), float(std.mean(0).mean()), acc, std
    return float(acc.mean(0).mean()), float(std.mean(0).mean()), acc
