"""Which subjects a run holds: one (``subj=1``) or several (``subj=all``, ``subj=[1,2]``), from ``conf/subj``.

Every ``conf/subj/<n>.yaml`` adds its subject to ``subj.roster`` ({id: voxels}); selecting several options merges
their rosters. ``subj.id`` and ``subj.voxels`` are derived from the roster (resolvers below): for one subject they
are that subject's id and voxel count (as before), for several the group's name (``1_2_3``, also the run folder
``subj1_2_3``) and the voxel counts in subject order, one ridge adapter each (adapter k = k-th subject).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def roster_ids(roster: Mapping[Any, Any]) -> list[int]:
    """Subject ids of a roster, sorted (the adapter order of a multi-subject model)."""
    return sorted(int(k) for k in roster)


def group_id(ids: Sequence[int]) -> int | str:
    """``subj.id``: the subject's number, or ``"1_2_3"`` for several."""
    ids = sorted(int(i) for i in ids)
    return ids[0] if len(ids) == 1 else "_".join(str(i) for i in ids)


def roster_group_id(roster: Mapping[Any, Any]) -> int | str:
    return group_id(roster_ids(roster))


def roster_voxels(roster: Mapping[Any, Any]) -> int | list[int]:
    """``subj.voxels``: one count, or the counts in subject order."""
    counts = [int(roster[k]) for k in sorted(roster, key=int)]
    return counts[0] if len(counts) == 1 else counts


def as_ids(subj: int | str | Sequence[int]) -> list[int]:
    """A ``subj.id`` value (``1`` or ``"1_2_3"``) or a list of ids as a sorted list of ints."""
    if isinstance(subj, (list, tuple)) or (hasattr(subj, "__iter__") and not isinstance(subj, str)):
        return sorted(int(s) for s in subj)
    return sorted(int(s) for s in str(subj).split("_"))


def as_voxels(voxels: int | Sequence[int], n: int) -> list[int]:
    counts = (
        [int(voxels)]
        if isinstance(voxels, int) or not hasattr(voxels, "__iter__")
        else [int(v) for v in voxels]
    )
    if len(counts) != n:
        raise ValueError(f"subj.voxels: expected {n} voxel counts (one per subject), found {counts}.")
    return counts
