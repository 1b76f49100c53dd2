"""One kind of reconstruction made ready to score: which clips a folder holds, their ground truth (from the data
file, or beside them in a ``side_by_side`` folder), the frames compared and the size they are scored at."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from neuroclips.evaluation.readers import (
    GroundTruth,
    ReconstructionFolder,
    read_ground_truth,
    resize_frames,
    select_frames,
)

SINGLE_IMAGE_KINDS = {
    "keyframe"
}  # kinds that hold one image per clip, scored against GT frame `keyframe_gt_index`


@dataclass(frozen=True)
class KindLoader:
    """The eval task's settings that decide which clips and frames are scored (``task.*`` of conf/stage/eval.yaml)."""

    kinds: list[str]
    split: str
    source: str
    frame_indices: list[int]
    keyframe_gt_index: int
    eval_size: int | None
    drop_scene_cuts: bool
    max_clips: int | None

    def entries(self, folder: ReconstructionFolder, kind: str) -> dict:
        layout = folder.resolved_layout(kind)
        has_kind_dirs = any((folder.root / k).is_dir() for k in self.kinds)
        if (
            layout != "store"
            and not (folder.root / kind).is_dir()
            and (has_kind_dirs or kind != self.kinds[0])
        ):
            return {}  # a flat foreign folder holds one kind: the first one listed
        return folder.entries(kind)

    def load(self, folder: ReconstructionFolder, kind: str, data_file: str, only: list[int] | None = None):
        """(gt, recon, clips, frame-selection label, {clip: raw recon for the report}) or None if nothing found;
        ``only``: score just these clips (a paired comparison's common clips)."""
        layout = folder.resolved_layout(kind)
        entries = self.entries(folder, kind)
        clips = sorted(entries) if only is None else [c for c in only if c in entries]
        if not clips:
            return None
        if self.max_clips is not None:
            clips = clips[: int(self.max_clips)]
        if layout == "side_by_side":
            pairs = [folder.load_side_by_side(entries[c]) for c in clips]
            gt = GroundTruth(
                np.stack([p[0] for p in pairs]), np.array(clips), np.zeros(len(clips), bool), self.source
            )
            raws = [p[1] for p in pairs]
        else:
            gt = read_ground_truth(data_file, self.split, clips)
            raws = [folder.load(entries[c]) for c in clips]
        keep = ~gt.scene_cut if self.drop_scene_cuts else np.ones(len(clips), bool)
        clips = [c for c, k in zip(clips, keep) if k]
        raws = [r for r, k in zip(raws, keep) if k]
        gt_frames = torch.from_numpy(np.ascontiguousarray(gt.frames[keep]))
        num_gt = gt_frames.shape[1]
        is_image = kind in SINGLE_IMAGE_KINDS or raws[0].ndim == 3
        if is_image:
            gt_frames = gt_frames[:, self.keyframe_gt_index]
            recon = torch.stack([torch.from_numpy(r if r.ndim == 3 else r[0]) for r in raws])
            selection = f"one image vs GT frame {self.keyframe_gt_index}"
        else:
            sel = [
                select_frames(r, self.frame_indices, num_gt, f"{kind} clip {c}") for r, c in zip(raws, clips)
            ]
            recon = torch.from_numpy(np.stack(sel))
            lengths = sorted({r.shape[0] for r in raws})
            selection = ", ".join(
                f"{t} frames as given" if t == num_gt else f"frames {self.frame_indices} of {t}"
                for t in lengths
            )
        size = (self.eval_size, self.eval_size) if self.eval_size else tuple(gt_frames.shape[-2:])
        gt_frames, recon = resize_frames(gt_frames, size), resize_frames(recon, size)
        selection += f", scored at {size[0]}x{size[1]}"
        return gt_frames, recon, clips, selection, dict(zip(clips, raws))
