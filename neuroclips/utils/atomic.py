"""Write files so that a crash never leaves a half-written one under the final name."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

_TMP_SUFFIX = ".tmp"
# What ``atomic_path`` leaves behind when the process dies between mkstemp and the rename: ``.<name>.<8 random>.tmp``
# (``tempfile`` draws the 8 characters from ``[a-z0-9_]``).
_ORPHAN_RE = re.compile(r"^\..+\.[a-z0-9_]{8}" + re.escape(_TMP_SUFFIX) + "$")


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; on success fsync and rename it into place, else remove it."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=_TMP_SUFFIX, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o644)  # mkstemp creates 0600; outputs are meant to be shared and served
        os.replace(tmp_path, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_folder(final: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path (``<name>.tmp<pid>``; a leftover of a killed run is removed first) for the block
    to save a folder into (``save_pretrained`` creates it); when the block finishes, it replaces ``final``: a killed
    run never leaves a half-written folder under the final name."""
    final = Path(final)
    tmp = final.with_name(final.name + f"{_TMP_SUFFIX}{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    yield tmp
    if final.exists():
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(final)


def is_atomic_tmp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file name that ``atomic_path`` creates."""
    return bool(_ORPHAN_RE.match(name))


def remove_orphan_tmp(root: str | Path, older_than_s: float = 0) -> tuple[int, int]:
    """Delete the temporary files ``atomic_path`` left under ``root`` (recursively): a kill between its mkstemp and
    its rename leaves one. Returns ``(count, bytes)`` removed.

    Only regular files whose name matches ``.<name>.<8 random>.tmp`` are removed; symlinks are neither followed nor
    removed, so nothing outside ``root`` is touched. Files modified less than ``older_than_s`` seconds ago are kept
    (a margin for a concurrent writer's live temp file; with the run lock held, 0 is safe).
    """
    count = size = 0
    now = time.time()
    for dirpath, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            if not is_atomic_tmp_name(name):
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode):
                    continue
                if older_than_s > 0 and now - st.st_mtime < older_than_s:
                    continue
                os.unlink(path)
            except FileNotFoundError:  # renamed into place or removed by its writer meanwhile
                continue
            count += 1
            size += st.st_size
    return count, size


def format_bytes(n: float) -> str:
    """``312.4 MB``: decimal units (kB = 1000 B), one decimal from kB on."""
    n = float(n)
    if abs(n) < 1000:
        return f"{int(n)} B"
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        n /= 1000
        if abs(n) < 999.95 or unit == "PB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


def write_json(path: str | Path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default, sort_keys=False) + "\n")


def write_npy(path: str | Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    try:
        import torch

        if isinstance(o, torch.Tensor):
            return o.detach().cpu().tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(o)
