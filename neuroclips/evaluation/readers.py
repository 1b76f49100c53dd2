"""Read ground truth and reconstructions for evaluation, from our outputs store or from another tool's folder.

Naming convention for a folder of reconstructions (``layout``):

* ``store`` -- our outputs store: ``<root>/<kind>/<clip_index:05d>.npy`` (uint8; ``video`` (16, 3, H, W),
  ``blurry`` (6, 3, H, W), ``keyframe`` (3, H, W)).
* ``per_clip`` -- one entry per clip, directly in ``<root>`` or in ``<root>/<kind>/``. The clip index is the last
  integer in the entry's name (``00012.mp4``, ``clip_12.gif``, ``test13.gif``), minus ``index_base`` (use
  ``index_base=1`` for MinD-Video-style ``test1.gif`` .. ``test1200.gif``). An entry is one of
    - ``.npy`` / ``.pt`` array: (T, 3, H, W), (T, H, W, 3), (3, H, W) or (H, W, 3); uint8, or float in [0, 1];
    - ``.gif`` / ``.mp4`` video (MP4 needs the ``av`` package);
    - a folder of frames ``.png`` / ``.jpg``, in name order.
* ``side_by_side`` -- the MinD-Video / NEURONS runner format: each ``.gif`` holds ground truth and reconstruction
  side by side (left half GT, right half prediction); the ground truth comes from the GIFs, no data file is needed.
* ``auto`` -- ``store`` if ``<root>/<kind>/`` holds ``NNNNN.npy`` files, else ``per_clip``.

Everything returned is uint8, channel-first: a clip is (T, 3, H, W), a keyframe (3, H, W).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neuroclips.data import schema
from neuroclips.errors import UserError
from neuroclips.utils.files import special_kind
from neuroclips.utils.images import to_uint8

LAYOUTS = ("auto", "store", "per_clip", "side_by_side")
ARRAY_SUFFIXES = (".npy", ".pt")
VIDEO_SUFFIXES = (".gif", ".mp4")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")
_LAST_INT = re.compile(r"(\d+)(?!.*\d)")


class ReconstructionError(UserError, ValueError):
    """A reconstruction file or folder does not follow the documented naming convention or format."""


def require_regular(
    path: str | Path, key: str = "task.source", what: str = "a regular file or a folder of frames"
) -> None:
    kind = special_kind(path)
    if kind is not None:
        raise ReconstructionError(f"{path}: expected {what} (config key '{key}'), found {kind}.")


@dataclass
class GroundTruth:
    frames: np.ndarray  # uint8 (N, 6, 3, H, W)
    clip_index: np.ndarray  # int64 (N,)
    scene_cut: np.ndarray  # bool (N,)
    source: str


def read_ground_truth(path: str | Path, split: str = "test", clips: list[int] | None = None) -> GroundTruth:
    """Ground-truth frames of ``split`` from the HDF5 data file (all clips, or those in ``clips``)."""
    p = Path(path)
    if not p.exists():
        raise ReconstructionError(
            f"{p}: the data file with the ground truth does not exist (config field 'data.file')."
        )
    require_regular(p, "data.file", "a regular HDF5 file with the ground truth")
    with schema._open(p) as f:
        key = schema.stimulus_path(split, "frames")
        if key not in f:
            raise ReconstructionError(f"{p}: dataset '/{key}' is missing; expected uint8 (N, 6, 3, H, W).")
        clip_index = f[schema.stimulus_path(split, "clip_index")][:].astype(np.int64)
        cut_key = schema.stimulus_path(split, "scene_cut")
        scene_cut = f[cut_key][:].astype(bool) if cut_key in f else np.zeros(len(clip_index), bool)
        if clips is None:
            return GroundTruth(frames=f[key][:], clip_index=clip_index, scene_cut=scene_cut, source=str(p))
        pos = {int(c): r for r, c in enumerate(clip_index)}
        missing = [c for c in clips if int(c) not in pos]
        if missing:
            raise ReconstructionError(
                f"{p}: clip indices {missing[:5]} are not in '/{schema.stimulus_path(split, 'clip_index')}'."
            )
        rows = np.array([pos[int(c)] for c in clips], dtype=np.int64)
        order = np.argsort(rows)  # h5py fancy indexing needs increasing rows
        frames = np.empty((len(rows), *f[key].shape[1:]), np.uint8)
        if len(rows):
            frames[order] = f[key][rows[order]]
    return GroundTruth(frames=frames, clip_index=clip_index[rows], scene_cut=scene_cut[rows], source=str(p))


def to_uint8_chw(array, where: str) -> np.ndarray:
    """Array of one clip or image -> uint8 channel-first: (T, 3, H, W) or (3, H, W)."""
    a = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    if a.ndim not in (3, 4):
        raise ReconstructionError(
            f"{where}: expected (T, 3, H, W), (T, H, W, 3), (3, H, W) or (H, W, 3), found shape {a.shape}."
        )
    channel_axis = a.ndim - 3
    if a.shape[channel_axis] not in (3, 4) and a.shape[-1] in (3, 4):
        a = np.moveaxis(a, -1, channel_axis)
    if a.shape[channel_axis] == 4:  # drop alpha
        a = a[:, :3] if a.ndim == 4 else a[:3]
    if a.shape[channel_axis] != 3:
        raise ReconstructionError(f"{where}: expected 3 colour channels, found shape {a.shape}.")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ReconstructionError(f"{where}: expected float frames in [0, 1], found NaN/Inf values.")
        if a.size and (a.min() < -1e-3 or a.max() > 1 + 1e-3):
            raise ReconstructionError(
                f"{where}: float frames must be in [0, 1], found range [{a.min():.3g}, {a.max():.3g}]."
            )
        return np.ascontiguousarray(to_uint8(a))
    raise ReconstructionError(f"{where}: expected uint8 or float frames, found dtype {a.dtype}.")


def read_entry(path: Path) -> np.ndarray:
    """One per-clip entry (array file, GIF/MP4, or folder of frames) -> uint8 (T, 3, H, W) or (3, H, W)."""
    try:
        return _read_entry(Path(path))
    except ReconstructionError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # a truncated or mislabelled image or video
        raise ReconstructionError(
            f"{path}: expected a readable {Path(path).suffix or 'frame folder'} clip, found one that cannot be decoded "
            f"({type(e).__name__}: {e})."
        ) from None


def _read_entry(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    require_regular(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
        for f in files:
            require_regular(f)
        if not files:
            raise ReconstructionError(
                f"{path}: a clip folder must hold frame images ({', '.join(FRAME_SUFFIXES)}), found none."
            )
        return to_uint8_chw(np.stack([_rgb(iio.imread(f)) for f in files]), str(path))
    suffix = path.suffix.lower()
    if suffix in ARRAY_SUFFIXES:
        return to_uint8_chw(load_array(path), str(path))
    if suffix == ".gif":
        return to_uint8_chw(_gif_frames(path), str(path))
    if suffix == ".mp4":
        try:
            frames = iio.imread(path, index=None, plugin="pyav")
        except ImportError as e:
            raise ReconstructionError(
                f"{path}: reading MP4 needs the 'av' package (pip install av), which is not installed."
            ) from e
        return to_uint8_chw(frames, str(path))
    if suffix in FRAME_SUFFIXES:
        return to_uint8_chw(_rgb(iio.imread(path)), str(path))
    raise ReconstructionError(
        f"{path}: unsupported file type {suffix!r}; expected .npy, .pt, .gif, .mp4, .png/.jpg or a folder of frames."
    )


def load_array(path: Path) -> np.ndarray | torch.Tensor:
    """A numeric array from ``.npy`` / ``.pt`` without unpickling Python objects (object arrays, pickles refused)."""
    refused = (
        f"{path}: expected a numeric array of frames (uint8, or float in [0, 1]), found an object array or "
        f"pickled Python objects, which evaluate does not load (unpickling can run code)."
    )
    if path.suffix.lower() == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            if "pickle" in str(e):
                raise ReconstructionError(refused) from None
            raise ReconstructionError(
                f"{path}: expected a .npy array of frames, found a file numpy cannot read ({e})."
            ) from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        with open(path, "rb") as fh:  # a pickle (legacy torch format) starts with its protocol byte 0x80
            is_pickle = fh.read(1) == b"\x80" or zipfile.is_zipfile(path)
        if is_pickle and "weights only" in str(e).lower():
            raise ReconstructionError(refused) from None
        raise ReconstructionError(
            f"{path}: expected a torch .pt file holding one tensor, found a file torch cannot read."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile):
        raise ReconstructionError(
            f"{path}: expected a torch .pt file holding one tensor, found a file torch cannot read."
        ) from None
    if not isinstance(obj, (torch.Tensor, np.ndarray)):
        raise ReconstructionError(
            f"{path}: expected a torch .pt file holding one tensor of frames, found a {type(obj).__name__}."
        )
    return obj


def _rgb(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    return img[..., :3]


def _gif_frames(path: Path) -> np.ndarray:
    """All frames of a GIF as (T, H, W, 3), every frame fully composited (Pillow, RGB)."""
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        return np.stack([np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(im)])


def clip_number(name: str, index_base: int = 0) -> int | None:
    m = _LAST_INT.search(Path(name).stem if "." in name else name)
    return None if m is None else int(m.group(1)) - index_base


class ReconstructionFolder:
    """Lists and loads the reconstructions of one kind from a folder in one of the documented layouts."""

    def __init__(self, root: str | Path, layout: str = "auto", index_base: int = 0):
        if layout not in LAYOUTS:
            raise ReconstructionError(f"layout: expected one of {LAYOUTS}, found {layout!r}.")
        self.root = Path(root)
        if not self.root.exists():
            raise ReconstructionError(
                f"{self.root}: the reconstruction folder does not exist (config field 'task.source')."
            )
        if not self.root.is_dir():
            raise ReconstructionError(
                f"{self.root}: expected a folder of reconstructions (config key 'task.source'), found "
                f"{special_kind(self.root) or 'a file'}."
            )
        self.layout = layout
        self.index_base = index_base

    def resolved_layout(self, kind: str) -> str:
        if self.layout != "auto":
            return self.layout
        d = self.root / kind
        if d.is_dir() and any(re.fullmatch(r"\d{5}\.npy", p.name) for p in d.iterdir()):
            return "store"
        return "per_clip"

    def entries(self, kind: str) -> dict[int, Path]:
        """clip index -> path of its entry."""
        layout = self.resolved_layout(kind)
        if layout == "store":
            d = self.root / kind
            if not d.is_dir():
                return {}
            found = sorted(d.glob("[0-9][0-9][0-9][0-9][0-9].npy"))
            for p in found:
                require_regular(p)
            return {int(p.stem): p for p in found}
        d = self.root / kind if (self.root / kind).is_dir() else self.root
        suffixes = (".gif",) if layout == "side_by_side" else ARRAY_SUFFIXES + VIDEO_SUFFIXES + FRAME_SUFFIXES
        out: dict[int, Path] = {}
        for p in sorted(d.iterdir()):
            if p.name.startswith(".") or p.name.endswith(".json"):
                continue
            require_regular(p)  # before any is_file/open: a FIFO would block the reader
            if (p.is_dir() and layout != "per_clip") or (p.is_file() and p.suffix.lower() not in suffixes):
                continue
            idx = clip_number(p.name, self.index_base)
            if (
                idx is None
            ):  # not a clip entry (e.g. a folder of another kind); the caller reports empty folders
                continue
            if idx in out:
                raise ReconstructionError(f"{p}: clip {idx} has two entries ({out[idx].name} and {p.name}).")
            out[idx] = p
        return out

    def load(self, path: Path) -> np.ndarray:
        return read_entry(path)

    def load_side_by_side(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """(gt, pred), each uint8 (T, 3, H, W/2): the GIF split in half along the width."""
        frames = to_uint8_chw(_gif_frames(path), str(path))
        w = frames.shape[-1]
        if w % 2:
            raise ReconstructionError(
                f"{path}: a side-by-side GIF must have an even width (GT | prediction), found {w}."
            )
        return frames[..., : w // 2], frames[..., w // 2 :]


def select_frames(clip: np.ndarray, frame_indices: list[int], num_gt_frames: int, where: str) -> np.ndarray:
    """Map a reconstructed clip onto the GT frames: a clip with as many frames as the GT is used as is; a longer one
    keeps ``frame_indices`` (config ``task.frame_indices``; default 4, 6, ..., 14 of 16, as NEURONS does)."""
    t = clip.shape[0]
    if t == num_gt_frames:
        return clip
    if len(frame_indices) != num_gt_frames:
        raise ReconstructionError(
            f"task.frame_indices: expected {num_gt_frames} indices (one per GT frame), found {list(frame_indices)}."
        )
    if max(frame_indices) >= t:
        raise ReconstructionError(
            f"{where}: has {t} frames, but task.frame_indices asks for frame {max(frame_indices)}."
        )
    return clip[list(frame_indices)]


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (..., 3, H, W) -> uint8 (..., 3, *size), antialiased bilinear, rounded."""
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    lead = frames.shape[:-3]
    x = frames.reshape(-1, *frames.shape[-3:]).float()
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return x.round_().clamp_(0, 255).to(torch.uint8).reshape(*lead, 3, *size)
