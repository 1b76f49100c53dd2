"""Top-1 retrieval of the SR's brain embeddings (``clip_voxels`` in the outputs store) against the keyframe CLIP
tokens cached in the data file (``/targets/clip_tokens/<split>``): the eval report's retrieval row."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from neuroclips.data import schema
from neuroclips.evaluation.readers import ReconstructionFolder
from neuroclips.metrics.retrieval import retrieval_top1


def sr_retrieval(
    folder: ReconstructionFolder, source: str, data_file: str, split: str, keyframe_gt_index: int, cfg: dict
) -> dict | None:
    """Top-1 retrieval of SR outputs (``clip_voxels`` in the store) against the cached keyframe CLIP tokens;
    ``cfg`` is ``task.retrieval`` (``enabled``, ``kind``, ``target``, ``pool_size``). None: nothing to score."""
    if not cfg.get("enabled", True):
        return None
    kind, target = cfg.get("kind", "clip_voxels"), cfg.get("target", "clip_tokens")
    entries = folder.entries(kind) if (Path(source) / kind).is_dir() else {}
    if not entries or not Path(data_file).exists():
        return None
    with h5py.File(data_file, "r") as f:
        key = schema.target_path(target, split)
        if key not in f:
            return {"skipped": f"no cached target '/{key}' in {data_file}"}
        listed = f[key].attrs.get("frame_indices")  # absent: every frame of the clip is stored
        if listed is None:
            slot = keyframe_gt_index
        else:
            listed = [int(i) for i in listed]
            slot = listed.index(keyframe_gt_index) if keyframe_gt_index in listed else 0
        index = {int(c): r for r, c in enumerate(f[schema.stimulus_path(split, "clip_index")][:])}
        clips = [c for c in sorted(entries) if c in index]
        rows = np.array([index[c] for c in clips])
        order = np.argsort(rows)
        tgt = np.empty((len(rows), *f[key].shape[1:]), f[key].dtype)
        tgt[order] = f[key][rows[order]]
    tgt = tgt[:, slot] if tgt.ndim == 4 else tgt
    brain = np.stack([np.load(entries[c]).astype(np.float32) for c in clips])
    if brain[0].size != tgt[0].size:
        return {
            "skipped": f"'{kind}' outputs have {brain[0].size} values per clip, cached '{target}' {tgt[0].size}"
        }
    pool = cfg.get("pool_size", 300)
    res = retrieval_top1(torch.from_numpy(brain), torch.from_numpy(tgt.astype(np.float32)), pool)
    return {
        "forward": res.forward,
        "backward": res.backward,
        "blocks": res.blocks,
        "n": len(clips),
        "label": f"top-1 among {min(pool or len(clips), len(clips))} ({kind} vs cached {target}, frame {keyframe_gt_index})",
    }
