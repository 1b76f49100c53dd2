"""The neuroclips HDF5 layout for one cc2017-style dataset, and its validation.

One file holds everything a run needs::

    /                                   attrs: schema_version, fps, tr_seconds, frames_per_clip, source,
                                               voxels_subj01, voxels_subj02, ... (one per subject present)
    /stimuli/{train,test}/frames        uint8 (N, 6, 3, H, W)   the clip's 6 frames at 3 fps, RGB
    /stimuli/{train,test}/captions      utf-8 str (N,)          one caption per clip
    /stimuli/{train,test}/clip_index    int64 (N,)              position of the clip in its split's movie order
    /stimuli/{train,test}/segment       int32 (N,)              movie segment id
    /stimuli/{train,test}/scene_cut     bool (N,)               a scene cut falls inside the clip
    /stimuli/{train,test}/labels        int32 (N,)              optional: object class (simulated data only)
    /fmri/subj0S/train                  float16|float32 (N, 2, V)    2 repetitions per training clip
    /fmri/subj0S/test                   float16|float32 (N, 10, V)   10 repetitions per test clip
    /targets/<name>/{train,test}        cached frozen-encoder outputs (float16), first axis N
    /targets/<name>/{train,test}_done   bool (N,)  rows already written (resumable caching)

``validate(path)`` returns every violation as one sentence naming the dataset, what was expected and what was
found; ``check(path)`` raises :class:`SchemaError` with all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from neuroclips.errors import UserError

SCHEMA_VERSION = 1
FRAMES_PER_CLIP = 6
FPS = 3
TR_SECONDS = 2.0
SPLITS = ("train", "test")
REPETITIONS = {"train": 2, "test": 10}
SUBJECT_VOXELS = {1: 13447, 2: 14828, 3: 9114}
STIMULUS_FIELDS = ("frames", "captions", "clip_index", "segment", "scene_cut")
STR_DTYPE = h5py.string_dtype(encoding="utf-8")


class SchemaError(UserError, ValueError):
    """A data file does not follow the neuroclips HDF5 schema. The message lists every violation."""


def subject_key(subj: int) -> str:
    return f"subj{int(subj):02d}"


def fmri_path(subj: int, split: str) -> str:
    return f"fmri/{subject_key(subj)}/{split}"


def stimulus_path(split: str, field: str) -> str:
    return f"stimuli/{split}/{field}"


def target_path(name: str, split: str) -> str:
    return f"targets/{name}/{split}"


def target_done_path(name: str, split: str) -> str:
    return f"targets/{name}/{split}_done"


@dataclass(frozen=True)
class FileSummary:
    """What a valid file holds: counts per split, frame size, subjects and their voxel counts, cached targets."""

    n_clips: dict[str, int]
    frame_size: dict[str, tuple[int, int]]
    subjects: dict[int, int]
    targets: dict[str, list[str]]
    source: str


def _open(path: str | Path) -> h5py.File:
    p = Path(path)
    if not p.exists():
        raise SchemaError(f"{p}: the data file does not exist.")
    try:
        return h5py.File(p, "r")
    except OSError as e:  # truncated or not HDF5 at all
        raise SchemaError(
            f"{p}: cannot be opened as HDF5 (expected a complete neuroclips data file; found a truncated or "
            f"non-HDF5 file: {e})."
        ) from e


def validate(path: str | Path, subjects: list[int] | None = None, deep: bool = True) -> list[str]:
    """Return every schema violation of the file at ``path`` as one sentence each (empty list: valid).

    ``subjects`` restricts the fMRI checks (and requires those subjects to be present). ``deep`` also reads the
    fMRI arrays in chunks to find NaN/Inf values.
    """
    try:
        f = _open(path)
    except SchemaError as e:
        return [str(e)]
    errors: list[str] = []
    name = str(path)
    with f:
        attrs = dict(f.attrs)
        for key, kind in (
            ("schema_version", int),
            ("fps", (int, float)),
            ("tr_seconds", (int, float)),
            ("frames_per_clip", int),
            ("source", str),
        ):
            if key not in attrs:
                errors.append(f"{name}: root attribute '{key}' is missing (expected {kind}).")
        if "schema_version" in attrs and int(attrs["schema_version"]) != SCHEMA_VERSION:
            errors.append(
                f"{name}: attribute 'schema_version' expected {SCHEMA_VERSION}, found {attrs['schema_version']}."
            )
        n_by_split: dict[str, int] = {}
        for split in SPLITS:
            for field in STIMULUS_FIELDS:
                ds_path = stimulus_path(split, field)
                if ds_path not in f:
                    errors.append(f"{name}: dataset '/{ds_path}' is missing.")
            fr = stimulus_path(split, "frames")
            if fr not in f:
                continue
            d = f[fr]
            if d.dtype != np.uint8:
                errors.append(f"{name}: dataset '/{fr}' expected dtype uint8, found {d.dtype}.")
            if d.ndim != 5 or d.shape[1] != FRAMES_PER_CLIP or d.shape[2] != 3:
                errors.append(
                    f"{name}: dataset '/{fr}' expected shape (N, {FRAMES_PER_CLIP}, 3, H, W), found {d.shape}."
                )
                continue
            n = d.shape[0]
            n_by_split[split] = n
            for field in STIMULUS_FIELDS[1:] + ("labels",):
                ds_path = stimulus_path(split, field)
                if ds_path in f and f[ds_path].shape[:1] != (n,):
                    errors.append(
                        f"{name}: dataset '/{ds_path}' expected {n} rows (one per clip), found shape {f[ds_path].shape}."
                    )
            dup = _duplicated_clip_index(f, split, name)
            if dup:
                errors.append(dup)
        subj_present = sorted(int(k[4:]) for k in f.get("fmri", {}).keys()) if "fmri" in f else []
        wanted = subjects if subjects is not None else subj_present
        if not wanted:
            errors.append(
                f"{name}: group '/fmri' holds no subject (expected at least one of 'subj01', 'subj02', 'subj03')."
            )
        for s in wanted:
            expected_v = attrs.get(f"voxels_{subject_key(s)}")
            for split in SPLITS:
                p = fmri_path(s, split)
                if p not in f:
                    errors.append(f"{name}: dataset '/{p}' is missing (subject {s}, {split} fMRI).")
                    continue
                d = f[p]
                reps = REPETITIONS[split]
                if d.ndim != 3 or d.shape[1] != reps:
                    errors.append(f"{name}: dataset '/{p}' expected shape (N, {reps}, V), found {d.shape}.")
                    continue
                if split in n_by_split and d.shape[0] != n_by_split[split]:
                    errors.append(
                        f"{name}: dataset '/{p}' expected {n_by_split[split]} clips (as in /stimuli/{split}/frames), found {d.shape[0]}."
                    )
                if expected_v is not None and d.shape[2] != int(expected_v):
                    errors.append(
                        f"{name}: dataset '/{p}' expected {int(expected_v)} voxels (attribute voxels_{subject_key(s)}), found {d.shape[2]}."
                    )
                if d.dtype.kind != "f":
                    errors.append(f"{name}: dataset '/{p}' expected a float dtype, found {d.dtype}.")
                elif deep:
                    bad = _count_nonfinite(d)
                    if bad:
                        errors.append(
                            f"{name}: dataset '/{p}' expected finite voxel values, found {bad} NaN/Inf values."
                        )
            if expected_v is None:
                errors.append(
                    f"{name}: root attribute 'voxels_{subject_key(s)}' is missing (expected the voxel count of subject {s})."
                )
        if "targets" in f:
            for tname, grp in f["targets"].items():
                for split in SPLITS:
                    if split in grp and split in n_by_split and grp[split].shape[0] != n_by_split[split]:
                        errors.append(
                            f"{name}: dataset '/targets/{tname}/{split}' expected {n_by_split[split]} rows, found {grp[split].shape[0]}."
                        )
    return errors


def _duplicated_clip_index(f: h5py.File, split: str, name: str) -> str | None:
    """One sentence if ``/stimuli/<split>/clip_index`` repeats a value (clips are keyed by it), else None."""
    p = stimulus_path(split, "clip_index")
    if p not in f or f[p].ndim != 1:
        return None
    values, counts = np.unique(f[p][:], return_counts=True)
    dup = values[counts > 1]
    if not dup.size:
        return None
    first = int(np.argmax(counts > 1))
    return (
        f"{name}: dataset '/{p}' expected a distinct clip index per clip, found {dup.size} duplicated value(s), "
        f"e.g. {int(values[first])} appears {int(counts[first])} times."
    )


def _count_nonfinite(d: h5py.Dataset, rows: int = 256) -> int:
    bad = 0
    for i in range(0, d.shape[0], rows):
        x = d[i : i + rows]
        bad += int(x.size - np.isfinite(x).sum())
    return bad


def check(path: str | Path, subjects: list[int] | None = None, deep: bool = True) -> FileSummary:
    """Validate and summarise; raise :class:`SchemaError` listing every violation."""
    errors = validate(path, subjects=subjects, deep=deep)
    if errors:
        raise SchemaError("\n".join(errors))
    return summarize(path)


def summarize(path: str | Path) -> FileSummary:
    with _open(path) as f:
        n = {s: f[stimulus_path(s, "frames")].shape[0] for s in SPLITS}
        size = {s: tuple(f[stimulus_path(s, "frames")].shape[3:]) for s in SPLITS}
        subjects = {int(k[4:]): f[fmri_path(int(k[4:]), "train")].shape[2] for k in f["fmri"].keys()}
        targets = (
            {t: [s for s in SPLITS if s in g] for t, g in f.get("targets", {}).items()}
            if "targets" in f
            else {}
        )
        return FileSummary(n, size, subjects, targets, str(f.attrs.get("source", "")))


def check_subject(path: str | Path, subj: int, expected_voxels: int) -> None:
    """Raise if the file lacks the subject or its voxel count differs from the configured one."""
    with _open(path) as f:
        p = fmri_path(subj, "train")
        if p not in f:
            present = sorted(f["fmri"].keys()) if "fmri" in f else []
            raise SchemaError(
                f"{path}: dataset '/{p}' is missing (subject {subj} was asked for; the file holds {present or 'no subject'})."
            )
        v = f[p].shape[-1]
        if v != expected_voxels:
            raise SchemaError(
                f"{path}: dataset '/{p}' has {v} voxels but subj={subj} expects {expected_voxels} "
                f"(conf/subj/{subj}.yaml field 'roster'); is this file for another subject?"
            )


def write_root_attrs(f: h5py.File, source: str, voxels: dict[int, int]) -> None:
    f.attrs["schema_version"] = SCHEMA_VERSION
    f.attrs["fps"] = FPS
    f.attrs["tr_seconds"] = TR_SECONDS
    f.attrs["frames_per_clip"] = FRAMES_PER_CLIP
    f.attrs["source"] = source
    for s, v in voxels.items():
        f.attrs[f"voxels_{subject_key(s)}"] = int(v)


def create_stimuli(
    f: h5py.File, split: str, n: int, height: int, width: int, with_labels: bool = False
) -> dict[str, h5py.Dataset]:
    """Create the stimulus datasets of one split (frames chunked one clip per chunk, uncompressed: fast reads)."""
    g = f.require_group(f"stimuli/{split}")
    out = {
        "frames": g.create_dataset(
            "frames",
            (n, FRAMES_PER_CLIP, 3, height, width),
            np.uint8,
            chunks=(1, FRAMES_PER_CLIP, 3, height, width),
        ),
        "captions": g.create_dataset("captions", (n,), STR_DTYPE),
        "clip_index": g.create_dataset("clip_index", (n,), np.int64),
        "segment": g.create_dataset("segment", (n,), np.int32),
        "scene_cut": g.create_dataset("scene_cut", (n,), bool),
    }
    if with_labels:
        out["labels"] = g.create_dataset("labels", (n,), np.int32)
    return out


def create_fmri(f: h5py.File, subj: int, split: str, n: int, voxels: int, dtype=np.float16) -> h5py.Dataset:
    reps = REPETITIONS[split]
    return f.create_dataset(fmri_path(subj, split), (n, reps, voxels), dtype, chunks=(1, reps, voxels))
