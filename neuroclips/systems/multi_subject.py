"""What the SR and PR systems share for several subjects: batch parts per adapter, per-subject validation sums,
and the phases of a new-subject adaptation (``init.from_run`` + ``adapt.adapter_epochs``).

One subject keeps the reference path exactly (no extra keys logged). Several subjects: the training batch is a dict
of per-subject batches (neuroclips.data.subject_mix); part k goes through adapter k. Validation has one loader per
subject (``dataloader_idx`` = adapter index); each metric is logged per subject (``val/subj01/top1_fwd``) and as
the mean over subjects under the one-subject name (``val/top1_fwd``, what model selection monitors).
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import Tensor

from neuroclips.data.subject_mix import subject_batches
from neuroclips.losses import contrastive as C

PHASES = ("adapter", "all")  # adaptation: only the new subjects' adapters train, then everything


def batch_parts(batch: dict, n_adapters: int) -> list[tuple[int, dict]]:
    """(adapter index, sub-batch) pairs of a training batch, in adapter order."""
    parts = subject_batches(batch)
    if parts[0][0] is None:
        return [(0, batch)]
    if len(parts) != n_adapters:
        raise ValueError(
            f"a training batch holds {len(parts)} subjects {[s for s, _ in parts]}, the model has "
            f"{n_adapters} subject adapters (subj and system.ridge.in_features must name the same subjects)."
        )
    return [(k, part) for k, (_, part) in enumerate(parts)]


def concat_draws(draws: list[C.MixCoDraw]) -> C.MixCoDraw:
    """Per-subject BiMixCo draws (each mixes within its subject) as one draw over the concatenated batch."""
    if len(draws) == 1:
        return draws[0]
    perms, start = [], 0
    for d in draws:  # each subject's permutation, offset to its rows in the concatenated batch
        perms.append(d.perm + start)
        start += len(d.perm)
    return C.MixCoDraw(
        torch.cat(perms), torch.cat([d.betas for d in draws]), torch.cat([d.select for d in draws])
    )


def subject_names(trainer, n: int) -> list[str]:
    """Log-key names of the adapters: ``subj01`` ... from the DataModule's subjects, else ``adapter0`` ..."""
    subjects = getattr(getattr(trainer, "datamodule", None), "subjects", None)
    if subjects is not None and len(subjects) == n:
        return [f"subj{int(s):02d}" for s in subjects]
    return [f"adapter{k}" for k in range(n)]


class SubjectSums:
    """Per-subject, per-metric weighted sums of validation values (several subjects only)."""

    def __init__(self) -> None:
        self.sums: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))

    def add(self, k: int, values: dict[str, Tensor | float], n: int) -> None:
        for name, v in values.items():
            if v is None:
                continue
            entry = self.sums[k][name]
            entry[0] += float(v) * n
            entry[1] += n

    def means(self) -> dict[int, dict[str, float]]:
        out = {k: {name: s / max(w, 1) for name, (s, w) in per.items()} for k, per in self.sums.items()}
        self.sums.clear()
        return out


def per_subject_and_mean(values: dict[int, dict[str, float]], names: list[str]) -> dict[str, float]:
    """``{prefix/subjXX/metric: v}`` for each subject and ``{prefix/metric: mean over subjects}``."""
    out: dict[str, float] = {}
    metrics = sorted({m for per in values.values() for m in per})
    for m in metrics:
        prefix, _, leaf = m.rpartition("/")
        got = [per[m] for per in values.values() if m in per]
        for k, per in values.items():
            if m in per:
                out[f"{prefix}/{names[k]}/{leaf}"] = per[m]
        out[m] = sum(got) / len(got)
    return out


def in_adapter_phase(epoch: int, adapter_epochs: int) -> bool:
    return epoch < int(adapter_epochs)
