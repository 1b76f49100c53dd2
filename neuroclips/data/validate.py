"""Checks the DataModule runs before it reads anything: its arguments, and the cached targets of the rows it reads.

Each failure is one sentence naming the config key (or the data file and dataset), what was expected and what was
found, raised as :class:`neuroclips.errors.ConfigError` (arguments) or :class:`neuroclips.data.schema.SchemaError`
(the file): the CLI reports it as ``neuroclips: error: ...`` with exit code 2.
"""

from __future__ import annotations

import numbers

import h5py
import numpy as np

from neuroclips.data import schema
from neuroclips.errors import ConfigError

# per-row layout the contracts give for the targets the stages read (docs/contracts.md, "Data file")
TARGET_LAYOUTS = {"vae_latents": (4, "(N, 6, 4, h, w)"), "caption_emb": (1, "(N, Dt)")}
CHUNK_BYTES = 64 << 20  # non-finite scan: read at most this much per block (paper-scale caches are GBs)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(value, key: str, what: str) -> int:
    """``value`` as an int >= 1, or ConfigError naming ``key``."""
    if not _is_int(value) or int(value) < 1:
        raise ConfigError(f"{key}: expected a positive integer ({what}), found {value!r}.")
    return int(value)


def optional_positive_int(value, key: str, what: str) -> int | None:
    return None if value is None else positive_int(value, key, what + ", or null")


def non_negative_int(value, key: str, what: str) -> int:
    if not _is_int(value) or int(value) < 0:
        raise ConfigError(f"{key}: expected a non-negative integer ({what}), found {value!r}.")
    return int(value)


def fraction(value, key: str, what: str) -> float:
    """A number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= float(value) < 1:
        raise ConfigError(f"{key}: expected a number in [0, 1) ({what}), found {value!r}.")
    return float(value)


def check_train_not_empty(
    file: str, n_rows: int, val_fraction: float, val_block: int, limit_clips: int | None
) -> None:
    if n_rows == 0:
        raise ConfigError(
            f"{file}: the training split is empty (expected at least one training clip; found none left after "
            f"holding out data.val_fraction={val_fraction} in blocks of data.val_block={val_block}, "
            f"data.limit_clips={limit_clips})."
        )


def check_cached_targets(
    file: str,
    split: str,
    names: list[str],
    rows,
    subj: int,
    role: str = "train",
    chunk_bytes: int = CHUNK_BYTES,
) -> None:
    """Refuse a missing, misshapen, half-cached or non-finite ``/targets/<name>/<split>`` for the ``rows`` read."""
    rows = np.unique(np.asarray(rows, np.int64))
    if not names or not rows.size:
        return
    with schema._open(file) as f:
        n = f[schema.stimulus_path(split, "clip_index")].shape[0]
        for name in names:
            _check_target(f, str(file), name, split, rows, n, subj, role, chunk_bytes)


def _check_target(
    f: h5py.File,
    file: str,
    name: str,
    split: str,
    rows: np.ndarray,
    n: int,
    subj: int,
    role: str,
    chunk_bytes: int,
) -> None:
    p, done_p = schema.target_path(name, split), schema.target_done_path(name, split)
    cmd = f"`python -m neuroclips.train stage=targets subj={subj} data.file={file}`"
    if not isinstance(f.get(p), h5py.Dataset):
        raise schema.SchemaError(
            f"{file}: dataset '/{p}' is missing (datamodule.targets lists '{name}'); cache it first with {cmd}."
        )
    d = f[p]
    if d.ndim < 1 or d.shape[0] != n or d.dtype.kind != "f":
        raise schema.SchemaError(
            f"{file}: dataset '/{p}' expected a float array with {n} rows (one per clip of /stimuli/{split}), "
            f"found shape {d.shape} dtype {d.dtype}."
        )
    frames = d.attrs.get("frame_indices")
    if frames is not None and (d.ndim < 2 or d.shape[1] != len(np.atleast_1d(frames))):
        raise schema.SchemaError(
            f"{file}: dataset '/{p}' expected shape (N, {len(np.atleast_1d(frames))}, ...) (one slot per frame in "
            f"its attribute frame_indices {np.atleast_1d(frames).tolist()}), found {d.shape}."
        )
    if name in TARGET_LAYOUTS:
        row_ndim, layout = TARGET_LAYOUTS[name]
        if d.ndim != row_ndim + 1 or (name == "vae_latents" and d.shape[1] != schema.FRAMES_PER_CLIP):
            raise schema.SchemaError(f"{file}: dataset '/{p}' expected shape {layout}, found {d.shape}.")
    if (
        done_p in f
    ):  # written by stage=targets and the converter; a hand-made cache without flags counts as complete
        done = f[done_p][:]
        if done.shape != (n,):
            raise schema.SchemaError(
                f"{file}: dataset '/{done_p}' expected shape ({n},) (one flag per clip), found {done.shape}."
            )
        missing = rows[~done.astype(bool)[rows]]
        if missing.size:
            raise schema.SchemaError(
                f"{file}: dataset '/{done_p}' marks {missing.size} of the {rows.size} rows read for {role} as not "
                f"cached (first: row {int(missing[0])}); finish the cache with {cmd} (datamodule.targets lists '{name}')."
            )
    bad = nonfinite_rows(d, rows, chunk_bytes)
    if bad.size:
        raise schema.SchemaError(
            f"{file}: dataset '/{p}' expected finite values, found NaN/Inf in {bad.size} of the {rows.size} rows read "
            f"for {role} (first: row {int(bad[0])}); re-encode them with {cmd}."
        )


def nonfinite_rows(d: h5py.Dataset, rows=None, chunk_bytes: int = CHUNK_BYTES) -> np.ndarray:
    """Sorted rows of ``d`` (among ``rows``; default all) holding a NaN/Inf, read in blocks of <= ``chunk_bytes``."""
    rows = np.arange(d.shape[0]) if rows is None else np.unique(np.asarray(rows, np.int64))
    if not rows.size:
        return rows
    per_row = max(1, int(np.prod(d.shape[1:], dtype=np.int64)) * d.dtype.itemsize)
    step = max(1, chunk_bytes // per_row)
    wanted = np.zeros(d.shape[0], bool)
    wanted[rows] = True
    bad = []
    for start in range(int(rows[0]), int(rows[-1]) + 1, step):
        stop = min(start + step, int(rows[-1]) + 1)
        if not wanted[start:stop].any():
            continue
        block = np.asarray(d[start:stop]).reshape(stop - start, -1)
        row_bad = ~np.isfinite(block).all(1) & wanted[start:stop]
        bad.extend((start + np.nonzero(row_bad)[0]).tolist())
    return np.asarray(bad, np.int64)
