"""Multi-subject data pieces: which training clips a run uses, and how one global batch splits over subjects.

A multi-subject run (``subj=all``) trains on batches that hold clips of every subject, as MindEye2 does: each
step's global batch B is divided over the subjects (B // n each, the first B % n subjects one more), and each
subject's loader shuffles with its own seed, so the subjects' clips of a step are not the same movie clips.
The training batch is a dict ``{"subj01": batch, "subj02": batch, ...}``; ``subject_batches`` lists its parts.
"""

from __future__ import annotations

import numpy as np

from neuroclips.data import schema
from neuroclips.errors import ConfigError

BATCH_KEY_PREFIX = "subj"


def batch_key(subj: int) -> str:
    return schema.subject_key(subj)


def subject_batches(batch: dict) -> list[tuple[int | None, dict]]:
    """The per-subject parts of a training batch: ``[(None, batch)]`` for a one-subject batch."""
    if "fmri" in batch:
        return [(None, batch)]
    return sorted(((int(k[len(BATCH_KEY_PREFIX) :]), v) for k, v in batch.items()), key=lambda kv: kv[0])


def split_batch(batch: int, n_subjects: int, field: str) -> list[int]:
    """Clips per subject of one (per-process) batch; refuses a batch smaller than the number of subjects."""
    if batch < n_subjects:
        raise ConfigError(
            f"{field}: expected at least one clip per subject per process ({n_subjects} subjects), found a batch of "
            f"{batch} clips per process (the batch size is the global batch of one step, over all subjects)."
        )
    return [batch // n_subjects + (1 if i < batch % n_subjects else 0) for i in range(n_subjects)]


def subject_seed(seed: int, subj: int, multi: bool) -> int:
    """Shuffle seed of a subject's training loader: the run's seed alone for one subject (unchanged order)."""
    return int(seed) if not multi else int(seed) + 7919 * int(subj)


def training_subset(
    train_rows: np.ndarray,
    segments: np.ndarray,
    fraction: float | None,
    keep_segments: list[int] | None,
    file: str,
) -> np.ndarray:
    """The training rows a run uses (``data.train_fraction``: the first share of them in movie order;
    ``data.train_segments``: those of the named movie segments). Validation and test rows are never touched."""
    if fraction is not None and keep_segments is not None:
        raise ConfigError(
            "data.train_fraction and data.train_segments: expected at most one of them, found both set."
        )
    if fraction is not None:
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, (int, float))
            or not 0 < float(fraction) <= 1
        ):
            raise ConfigError(
                f"data.train_fraction: expected a number in (0, 1] (share of the training clips), "
                f"found {fraction!r}."
            )
        return train_rows[: max(1, int(round(float(fraction) * len(train_rows))))]
    if keep_segments is not None:
        wanted = [int(s) for s in keep_segments]
        present = sorted(set(int(s) for s in np.unique(segments[train_rows])))
        unknown = sorted(set(wanted) - set(present))
        if unknown:
            raise ConfigError(
                f"data.train_segments: expected segment ids of the training clips of {file} "
                f"(held: {present}), found {unknown}."
            )
        return train_rows[np.isin(segments[train_rows], wanted)]
    return train_rows
