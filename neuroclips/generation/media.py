"""Viewable media per clip: the reconstruction beside the ground truth, as GIF (and MP4 when imageio-ffmpeg exists).

Written by a prediction callback next to the outputs store (``<outputs>/media/<kind>/<clip>.gif``), atomically, so
a rerun that skips finished clips never leaves half-written files. GT (6 frames at 3 fps) is aligned to the
reconstruction's frame times (frame i at i·fps_gt/fps_recon) and resized to its size.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import Callback

from neuroclips.utils.atomic import atomic_path
from neuroclips.utils.images import to_uint8


def side_by_side(
    recon: torch.Tensor,
    gt: torch.Tensor | None,
    gt_fps: float = 3.0,
    fps: float = 8.0,
    first_frame: int = 0,
) -> np.ndarray:
    """(F, 3, H, W) [0, 1] reconstruction (+ (Fg, 3, h, w) GT) -> (F - first_frame, H, W(·2), 3) uint8 frames.

    ``first_frame`` drops the reconstruction's leading frames; GT stays aligned to the kept frames' times (frame i
    of the reconstruction at i / fps seconds).
    """
    frames = recon.float()[first_frame:]
    if gt is not None:
        idx = [min(int((first_frame + i) * gt_fps / fps), gt.shape[0] - 1) for i in range(frames.shape[0])]
        g = F.interpolate(gt[idx].float(), size=frames.shape[-2:], mode="bilinear", align_corners=False)
        frames = torch.cat([g, frames], dim=-1)
    return to_uint8(frames.clamp(0, 1)).transpose(0, 2, 3, 1)


def write_media(path: Path, frames: np.ndarray, fps: float, mp4: bool = True) -> list[Path]:
    import imageio.v2 as imageio

    written = []
    with atomic_path(path.with_suffix(".gif")) as tmp:
        imageio.mimsave(tmp, list(frames), format="GIF", duration=1000.0 / fps, loop=0)
    written.append(path.with_suffix(".gif"))
    if mp4 and importlib.util.find_spec("imageio_ffmpeg") is not None:
        with atomic_path(path.with_suffix(".mp4")) as tmp:
            imageio.mimsave(tmp, list(frames), format="FFMPEG", fps=fps)
        written.append(path.with_suffix(".mp4"))
    return written


class MediaWriter(Callback):
    """After each predict batch, write GIF (+MP4) of ``kind`` for every clip, GT on the left when the batch has
    ``frames`` (datamodule ``load_frames=true``).

    ``first_frame`` and ``play_fps`` shape the media only (the saved output keeps every frame): the reference
    (Animatediff/scripts/neuroclips.py ``save_videos_grid(sample[:, :, 4:], ..., fps=6)``) shows frames 4-15 of
    the 16 at 6 fps. ``fps`` stays the frame rate the reconstruction was made at (GT alignment); ``play_fps``
    (default: ``fps``) is the rate the media play at.
    """

    def __init__(
        self,
        root: str,
        kind: str = "video",
        fps: float = 8.0,
        gt_fps: float = 3.0,
        enabled: bool = True,
        mp4: bool = True,
        first_frame: int = 0,
        play_fps: float | None = None,
    ) -> None:
        self.root, self.kind, self.fps, self.gt_fps = Path(root), kind, fps, gt_fps
        self.enabled, self.mp4 = enabled, mp4
        self.first_frame, self.play_fps = int(first_frame), fps if play_fps is None else play_fps

    def _base(self, clip: int) -> Path:
        return self.root / self.kind / f"{int(clip):05d}"

    def paths(self, clip: int) -> list[Path]:
        """The media files one clip has once written (GIF, and MP4 where imageio-ffmpeg exists)."""
        base = self._base(clip)
        mp4 = self.mp4 and importlib.util.find_spec("imageio_ffmpeg") is not None
        return [base.with_suffix(".gif")] + ([base.with_suffix(".mp4")] if mp4 else [])

    def missing(self, clips) -> list[int]:
        """Clips whose media are not all on disk: the runtime predicts them again, so nothing viewable is lost."""
        if not self.enabled:
            return []
        return [int(c) for c in clips if not all(p.exists() for p in self.paths(c))]

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not self.enabled or not outputs or self.kind not in outputs:
            return
        gts = batch.get("frames")
        for i, clip in enumerate(outputs["clip_index"].tolist()):
            frames = side_by_side(
                outputs[self.kind][i].cpu(),
                None if gts is None else gts[i].cpu(),
                self.gt_fps,
                self.fps,
                self.first_frame,
            )
            write_media(self._base(clip), frames, self.play_fps, self.mp4)
