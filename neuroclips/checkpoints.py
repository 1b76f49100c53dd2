"""Checkpoints that know which stage and subjects made them, and loading them into the next stage's nets.

A multi-subject checkpoint (``subj=all``) records ``subjects`` (its adapter order) in its metadata; loading it for
one subject (``expected_subj=3``) takes the shared weights and that subject's adapter slice: every key
``<prefix>...linears.<k>.*`` with k the subject's position becomes ``...linears.0.*``, the other subjects' adapters are
left out. MindEye2's ``ridge.linears.N`` layout is kept, so both kinds load into the same modules."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from neuroclips.errors import UserError
from neuroclips.utils.weights import is_meta, require_file


class CheckpointMismatchError(UserError, ValueError):
    """A checkpoint from another stage or subject than the configuration expects."""


def load_lightning_checkpoint(path: str | Path, mmap: bool = False):
    """The one ``torch.load`` of a Lightning checkpoint in neuroclips: on CPU, ``weights_only``; ``mmap``: tensors are
    memory-mapped, so their bytes are read only when used. Raises whatever ``torch.load`` raises: each caller turns
    that into its own sentence (``read_checkpoint``, ``resume.read_last``, ``provenance.checkpoint_fingerprint``)."""
    # Lightning checkpoints hold plain containers, tensors and our metadata: weights_only is enough
    return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def read_checkpoint(path: str | Path, field: str = "checkpoint") -> dict:
    p = require_file(path, field, "checkpoint of an earlier stage")
    try:
        return load_lightning_checkpoint(p)
    except Exception as e:  # truncated or foreign file
        raise CheckpointMismatchError(
            f"{p}: cannot be read as a neuroclips checkpoint ({type(e).__name__}: {e})."
        ) from e


def checkpoint_metadata(ckpt: dict) -> dict:
    return dict(ckpt.get("neuroclips") or {})


def held_subjects(metadata: dict) -> list[int] | None:
    """The subjects a checkpoint holds, in adapter order (single-subject checkpoints before this field: [subj])."""
    if metadata.get("subjects") is not None:
        return [int(s) for s in metadata["subjects"]]
    if metadata.get("subj") is not None:
        return [int(metadata["subj"])]
    return None


def check_metadata(
    path, ckpt: dict, expected_stage: str | list[str] | None, expected_subj: int | str | list[int] | None
) -> dict:
    """Refuse a checkpoint of another stage or subject. ``expected_subj``: one subject (held by the checkpoint, alone
    or among others) or a list of subjects (the checkpoint holds exactly those: a resume)."""
    metadata = checkpoint_metadata(ckpt)
    if not metadata:
        raise CheckpointMismatchError(
            f"{path}: not a neuroclips checkpoint (no 'neuroclips' metadata: stage, subj)."
        )
    stages = [expected_stage] if isinstance(expected_stage, str) else expected_stage
    if stages and metadata.get("stage") not in stages:
        raise CheckpointMismatchError(
            f"{path}: checkpoint of stage '{metadata.get('stage')}', expected stage {' or '.join(repr(s) for s in stages)}."
        )
    held = held_subjects(metadata)
    if expected_subj is None or held is None:
        return metadata
    wanted = _ids(expected_subj)
    if len(wanted) == 1 and len(held) == 1 and held != wanted:
        raise CheckpointMismatchError(
            f"{path}: checkpoint of subject {held[0]}, expected subject {wanted[0]} (subj={wanted[0]})."
        )
    if len(wanted) == 1 and wanted[0] not in held:
        raise CheckpointMismatchError(
            f"{path}: checkpoint of subjects {held}, expected one holding subject {wanted[0]} (subj={wanted[0]})."
        )
    if len(wanted) > 1 and held != wanted:
        raise CheckpointMismatchError(
            f"{path}: checkpoint of subjects {held}, expected subjects {wanted} (subj)."
        )
    return metadata


def _ids(subj: int | str | list[int]) -> list[int]:
    if isinstance(subj, (list, tuple)):
        return sorted(int(s) for s in subj)
    return sorted(int(s) for s in str(subj).split("_"))


# per-subject containers of a multi-subject model, and what their k-th entry is called in a one-subject model
_ADAPTER_KEYS = (
    (re.compile(r"^(?P<head>(?:.*\.)?linears\.)(?P<k>\d+)(?P<tail>\..*)$"), "0"),  # ridge.linears.<k> -> .0
    (
        re.compile(r"^(?P<head>(?:.*\.)?inception\.)(?P<k>\d+)\.(?P<tail>.*)$"),
        "",
    ),  # PR inception.<k>. -> inception.
)


def subject_slice(state: dict, held: list[int], subj: int) -> dict:
    """The state dict one subject's model holds: shared keys as they are, adapter ``linears.<k>`` of ``subj`` renamed
    ``linears.0``, other subjects' adapters dropped (``held``: the checkpoint's subjects in adapter order)."""
    if len(held) == 1:
        return state
    k = str(held.index(int(subj)))
    out = {}
    for key, value in state.items():
        for pattern, single in _ADAPTER_KEYS:
            m = pattern.match(key)
            if m is not None:
                if m["k"] == k:
                    out[f"{m['head']}{single}{m['tail']}"] = value
                break
        else:
            out[key] = value
    return out


def load_into(
    module: nn.Module,
    path: str,
    expected_stage: str | list[str] | None = None,
    expected_subj: int | None = None,
    prefix: str = "",
    strict: bool = True,
    field: str = "checkpoint",
) -> nn.Module:
    """Load the weights under ``prefix`` of a Lightning checkpoint into ``module`` and return it.

    ``prefix`` selects a sub-tree of the system's state dict (e.g. ``"net."``); it is stripped before loading.
    On the ``meta`` device (dry runs) nothing is read.
    """
    if is_meta(module):
        return module
    ckpt = read_checkpoint(path, field)
    metadata = check_metadata(path, ckpt, expected_stage, expected_subj)
    sd = ckpt.get("state_dict", ckpt)
    held = held_subjects(metadata)
    if (
        held and expected_subj is not None and len(_ids(expected_subj)) == 1
    ):  # one subject out of a multi-subject run
        sd = subject_slice(sd, held, _ids(expected_subj)[0])
    if prefix:
        sd = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
        if not sd:
            raise CheckpointMismatchError(f"{path}: no weights under prefix '{prefix}' in this checkpoint.")
    result = module.load_state_dict(sd, strict=strict)
    if strict is False and result.missing_keys:
        own = {k for k, _ in module.named_parameters()}
        missing = [k for k in result.missing_keys if k in own]
        if missing:
            raise CheckpointMismatchError(f"{path}: {len(missing)} parameters missing, e.g. {missing[:3]}.")
    return module


def run_checkpoint(path: str | Path) -> Path:
    """``init.from_run``: a run directory (its ``checkpoints/best.ckpt``) or a checkpoint file."""
    p = Path(path)
    return p / "checkpoints" / "best.ckpt" if p.is_dir() else p


_ONE_SUBJECT_KEY = re.compile(r"(^|\.)(linears\.0\.|inception\.)")  # a one-subject model's per-subject keys


def split_subjects(state: dict, held: list[int]) -> tuple[dict, dict[int, dict]]:
    """A state dict as (shared keys, {subject: its per-subject keys named as in a one-subject model})."""
    if len(held) == 1:
        own = {k: v for k, v in state.items() if _ONE_SUBJECT_KEY.search(k)}
        return {k: v for k, v in state.items() if k not in own}, {held[0]: own}
    shared = {k: v for k, v in state.items() if not any(p.match(k) for p, _ in _ADAPTER_KEYS)}
    per = {}
    for s in held:
        sliced = subject_slice(state, held, s)
        per[s] = {k: v for k, v in sliced.items() if k not in shared}
    return shared, per


def _as_adapter(key: str, j: int, multi: bool) -> str:
    """A one-subject per-subject key as adapter ``j`` of a model of several subjects."""
    if not multi:
        return key
    key = re.sub(r"(^|\.)linears\.0\.", lambda m: f"{m[1]}linears.{j}.", key, count=1)
    return re.sub(r"(^|\.)inception\.", lambda m: f"{m[1]}inception.{j}.", key, count=1)


def warm_start_from_run(
    system: nn.Module,
    path: str | Path,
    subjects: list[int],
    expected_stage: str | list[str],
    prefixes: tuple[str, ...],
    field: str = "init.from_run",
) -> list[int]:
    """Load an earlier run's weights under ``prefixes`` into ``system`` (a model of the subjects ``subjects``).

    Shared weights load whole (every one must be there, with its shape); per-subject adapters (ridge, the PR's
    Inception Extension) are taken for the subjects that run held, the others stay freshly initialised.
    Returns the new subjects (those the run did not hold).
    """
    ckpt_path = run_checkpoint(path)
    ckpt = read_checkpoint(ckpt_path, field)
    metadata = check_metadata(ckpt_path, ckpt, expected_stage, None)
    held = held_subjects(metadata) or []
    source = {k: v for k, v in ckpt.get("state_dict", ckpt).items() if k.startswith(prefixes)}
    shared, per = split_subjects(source, held)
    own = {k: v for k, v in system.state_dict().items() if k.startswith(prefixes)}
    own_shared, _ = split_subjects(own, subjects)
    picked = dict(shared)
    for j, s in enumerate(subjects):
        picked.update({_as_adapter(k, j, len(subjects) > 1): v for k, v in per.get(s, {}).items()})
    missing = sorted(set(own_shared) - set(shared))
    if missing or set(picked) - set(own):
        extra = sorted(set(picked) - set(own))
        raise CheckpointMismatchError(
            f"{ckpt_path}: expected the weights of this run's nets under {list(prefixes)} (config field '{field}'), "
            f"found {len(missing)} missing (e.g. {missing[:2]}) and {len(extra)} unknown (e.g. {extra[:2]}): a run of "
            f"another stage or model?"
        )
    for key, value in picked.items():
        if tuple(value.shape) != tuple(own[key].shape):
            adapter = key not in own_shared
            raise CheckpointMismatchError(
                f"{ckpt_path}: key '{key}' has shape {tuple(value.shape)}, expected {tuple(own[key].shape)} (config "
                f"field '{field}': "
                + (
                    "that subject's voxel count differs from this run's)."
                    if adapter
                    else "another scale or model size?)."
                )
            )
    system.load_state_dict(picked, strict=False)
    return [s for s in subjects if s not in held]
