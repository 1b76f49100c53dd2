"""Fingerprints: what determines an artifact, so that no rerun reuses work made under another configuration.

A stage's fingerprint is a hash of three things:

* its **result-relevant config**: the resolved ``stage``, ``system``/``task``, ``datamodule``, ``data``, ``trainer``
  and ``seed`` blocks (the system and task blocks already hold, resolved, every scale fact they use), minus the
  cosmetic keys listed in ``provenance.ignore`` (loggers, progress bars, worker counts, process counts);
* the **data file's identity**: a content sample of ``/stimuli`` and ``/fmri`` and the file's attributes (content,
  not mtime: ``stage=targets`` writes into the same file), plus the fingerprint of every cached target it reads;
* the **fingerprints of its inputs**: each existing file or folder the config names (an earlier stage's checkpoint
  contributes the fingerprint stored in it; other files their size and mtime), and for ``stage.inputs`` the
  fingerprint in that earlier stage's ``summary.json`` (its outputs in the outputs store).

So a new ``sr`` checkpoint changes the fingerprint of ``sr_prior`` (which reads it), then ``keyframe``, ``video``
and ``eval``. Checkpoints carry it in ``checkpoint["neuroclips"]``, every clip of the outputs store in its sidecar,
cached targets in their dataset attributes, every run in ``summary.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

RESULT_BLOCKS = ("stage", "system", "task", "datamodule", "data", "trainer", "seed", "deterministic")
SAMPLE_ROWS = 16  # rows hashed per dataset for the data file's identity (first, last and evenly spaced)
MAX_DIR_FILES = 2000


@dataclass
class Provenance:
    fingerprint: str
    config: dict[str, Any]
    inputs: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"fingerprint": self.fingerprint, "config": self.config, "inputs": self.inputs}


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


# ----------------------------------------------------------------------------------------------- config
def _drop(tree: dict, dotted: str) -> None:
    head, _, rest = dotted.partition(".")
    if head not in tree:
        return
    if not rest:
        del tree[head]
    elif isinstance(tree[head], dict):
        _drop(tree[head], rest)


def result_config(resolved: dict, ignore: list[str]) -> dict:
    """The result-relevant part of a resolved config (a plain dict)."""
    out = {k: json.loads(json.dumps(resolved[k], default=str)) for k in RESULT_BLOCKS if k in resolved}
    for key in ignore:
        _drop(out, key)
    return out


def flatten(tree, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        items: dict[str, Any] = {}
        for k, v in tree.items():
            items.update(flatten(v, f"{prefix}{k}."))
        return items if items or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: tree}


def differing_keys(old: dict, new: dict) -> list[str]:
    """Dotted keys whose values differ between two result configs (added and removed keys included)."""
    a, b = flatten(old), flatten(new)
    return sorted(k for k in a.keys() | b.keys() if a.get(k, "<absent>") != b.get(k, "<absent>"))


def describe_difference(old: Provenance | dict, new: Provenance, limit: int = 6) -> str:
    """'system.lr: 0.001 -> 0.003, input init.sr_ckpt changed' (what made two fingerprints differ)."""
    old = old if isinstance(old, dict) else old.as_dict()
    parts = []
    old_cfg, old_in = old.get("config") or {}, old.get("inputs") or {}
    a, b = flatten(old_cfg), flatten(new.config)
    for k in differing_keys(old_cfg, new.config)[:limit]:
        parts.append(f"{k}: {_short(a.get(k, '<absent>'))} -> {_short(b.get(k, '<absent>'))}")
    changed_inputs = sorted(
        k for k in old_in.keys() | new.inputs.keys() if old_in.get(k) != new.inputs.get(k)
    )
    parts += [f"input {k} changed" for k in changed_inputs[: max(1, limit - len(parts))]]
    if not parts and old.get("fingerprint") != new.fingerprint:
        parts.append("the fingerprint recipe changed")
    return ", ".join(parts)


def _short(v) -> str:
    s = json.dumps(v, default=str) if not isinstance(v, str) else v
    return s if len(s) <= 60 else s[:57] + "..."


# ----------------------------------------------------------------------------------------------- data
def data_identity(path: str | Path) -> str:
    """Content identity of a neuroclips data file, without ``/targets`` (which stage=targets writes into it)."""
    h = hashlib.sha256()
    with h5py.File(path, "r") as f:
        h.update(json.dumps({k: _attr(v) for k, v in sorted(f.attrs.items())}, default=str).encode())

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not name.startswith("targets"):
                h.update(f"{name}{obj.shape}{obj.dtype}".encode())
                n = obj.shape[0] if obj.shape else 0
                rows = sorted(set(np.linspace(0, n - 1, SAMPLE_ROWS).astype(int).tolist())) if n else []
                for r in rows:
                    h.update(
                        np.ascontiguousarray(obj[r]).tobytes()
                        if obj.dtype.kind != "O"
                        else str(obj[r]).encode()
                    )

        f.visititems(visit)
    return h.hexdigest()[:20]


def _attr(v):
    return v.tolist() if isinstance(v, np.ndarray) else (v.item() if isinstance(v, np.generic) else v)


def target_fingerprints(path: str | Path, names: list[str]) -> dict[str, str]:
    """The fingerprint each cached target records (``stage=targets`` writes it), or its encoder description."""
    out = {}
    with h5py.File(path, "r") as f:
        for name in names:
            for split in ("train", "test"):
                key = f"targets/{name}/{split}"
                if key in f:
                    attrs = f[key].attrs
                    out[f"target {name}/{split}"] = str(attrs.get("fingerprint", attrs.get("config", "")))
    return out


# ----------------------------------------------------------------------------------------------- files
def checkpoint_fingerprint(path: str | Path) -> str | None:
    """The fingerprint a neuroclips checkpoint carries (memory-mapped: the weights are not read)."""
    # imported here: provenance needs torch only when it fingerprints a checkpoint
    from neuroclips.checkpoints import load_lightning_checkpoint

    try:
        ckpt = load_lightning_checkpoint(path, mmap=True)
    except Exception:  # noqa: BLE001 - a foreign or truncated file: identified by its size and mtime instead
        return None
    metadata = ckpt.get("neuroclips") if isinstance(ckpt, dict) else None
    return (metadata or {}).get("fingerprint")


def stat_identity(path: Path) -> str:
    """Size and mtime of a file, or of every file in a folder (frozen weights named by path)."""
    if path.is_file():
        st = path.stat()
        return f"{st.st_size}:{st.st_mtime_ns}"
    entries = []
    for root, _dirs, files in os.walk(path):
        for name in sorted(files):
            p = Path(root) / name
            if name.endswith(".tmp") or name == ".lock":
                continue
            st = p.stat()
            entries.append((str(p.relative_to(path)), st.st_size, st.st_mtime_ns))
            if len(entries) >= MAX_DIR_FILES:
                break
    return digest(sorted(entries))


def file_inputs(tree: dict, skip: set[str]) -> dict[str, str]:
    """Every existing file or folder named by a string value of ``tree`` (except ``skip``), by dotted key."""
    out = {}
    for key, value in flatten(tree).items():
        if not isinstance(value, str) or "/" not in value or value in skip:
            continue
        p = Path(value)
        try:
            exists = p.exists()
        except OSError:
            continue
        if not exists or any(str(p).startswith(s.rstrip("/") + "/") for s in skip):
            continue
        fp = checkpoint_fingerprint(p) if p.is_file() and p.suffix == ".ckpt" else None
        out[key] = fp or stat_identity(p)
    return out


def upstream_summary(run_root: Path, stage: str) -> dict | None:
    p = run_root / stage / "summary.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None
