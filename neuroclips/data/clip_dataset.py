"""The items of one split of a neuroclips HDF5 file (``ClipDataset``): fMRI, keyframe, frames, caption, cached
targets and earlier stages' outputs of one clip, with the training split's epoch-dependent repetition and keyframe.

The HDF5 file is opened lazily inside each worker process (never in ``__init__``), dataset handles are cached, and
items are read one clip at a time (fancy indexing is 15-60x slower in h5py).
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from neuroclips.data import schema, validate
from neuroclips.outputs import TEXT_KINDS, OutputStore

REP_POLICIES = ("epoch_parity", "random", "mean")


class ClipDataset(Dataset):
    """Items of one split. ``role`` is ``train`` (epoch-dependent repetition and keyframe), ``val`` or ``test``."""

    def __init__(
        self,
        file: str,
        subj: int,
        hdf5_split: str,
        rows: np.ndarray,
        role: str,
        rep_policy: str = "epoch_parity",
        keyframe_policy: str | int = "parity_2_3",
        eval_keyframe_index: int = 2,
        load_frames: bool = False,
        load_captions: bool = False,
        targets: list[str] | None = None,
        inputs_from_outputs: dict[str, str] | None = None,
        in_memory: bool = False,
        seed: int = 0,
    ):
        self.file, self.subj, self.split, self.role = str(file), subj, hdf5_split, role
        self.rows = np.asarray(rows, np.int64)
        self.rep_policy, self.keyframe_policy = rep_policy, keyframe_policy
        self.eval_keyframe_index = eval_keyframe_index
        self.load_frames, self.load_captions = load_frames, load_captions
        self.targets = list(targets or [])
        self.inputs = dict(inputs_from_outputs or {})
        self.seed = seed
        # shared with worker processes (fork and spawn): the runtime's callback sets it each epoch
        self._epoch = torch.zeros(1, dtype=torch.long).share_memory_()
        self._h5: h5py.File | None = None
        self._ds: dict[str, Any] = {}
        self._memory: dict[str, np.ndarray] | None = None
        self._target_slots: dict[str, dict[int, int]] = {}
        self._verified = False  # cached targets checked (copied into workers, so they do not check again)
        if in_memory:
            self._load_into_memory()

    # -- lifecycle -------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_h5"], state["_ds"] = None, {}
        return state

    def set_epoch(self, epoch: int) -> None:
        self._epoch[0] = int(epoch)

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def verify(self) -> None:
        """Refuse missing, misshapen, half-cached or non-finite cached targets of the rows read (once)."""
        if not self._verified:
            validate.check_cached_targets(
                self.file, self.split, self.targets, self.rows, self.subj, self.role
            )
            self._verified = True

    def _open(self) -> None:
        if self._h5 is not None:
            return
        self.verify()
        f = h5py.File(self.file, "r")
        self._h5 = f
        ds = {
            "fmri": f[schema.fmri_path(self.subj, self.split)],
            "clip_index": f[schema.stimulus_path(self.split, "clip_index")][:],
        }
        if self.load_frames:
            ds["frames"] = f[schema.stimulus_path(self.split, "frames")]
        if self.load_captions:
            ds["captions"] = f[schema.stimulus_path(self.split, "captions")]
        for t in self.targets:
            p = schema.target_path(t, self.split)
            if p not in f:
                raise schema.SchemaError(
                    f"{self.file}: dataset '/{p}' is missing; run `python -m neuroclips.train stage=targets` first "
                    f"(or set clip_tokens.online=true)."
                )
            ds["t/" + t] = f[p]
            fi = f[p].attrs.get("frame_indices")
            if fi is not None:
                self._target_slots[t] = {int(v): i for i, v in enumerate(np.asarray(fi).tolist())}
        self._ds = ds

    def _load_into_memory(self) -> None:
        self._open()
        mem = {}
        for k, d in self._ds.items():
            mem[k] = d[:] if isinstance(d, h5py.Dataset) else d
        self._memory = mem
        self._h5.close()
        self._h5, self._ds = None, {}

    def _get(self, key: str, row: int):
        if self._memory is not None:
            return self._memory[key][row]
        self._open()
        return self._ds[key][row]

    def _clip_index_array(self) -> np.ndarray:
        if self._memory is not None:
            return self._memory["clip_index"]
        self._open()
        return self._ds["clip_index"]

    # -- policies --------------------------------------------------------------------------------------------
    def _rng(self, row: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(row)])

    def _fmri(self, row: int) -> tuple[np.ndarray, int]:
        x = self._get("fmri", row).astype(np.float32)  # (R, V)
        if self.role != "train" or self.rep_policy == "mean":
            return x.mean(0), -1
        if self.rep_policy == "epoch_parity":
            r = self.epoch % x.shape[0]
        elif self.rep_policy == "random":
            r = int(self._rng(row).integers(x.shape[0]))
        else:
            raise ValueError(f"data.rep_policy: expected one of {REP_POLICIES}, found {self.rep_policy!r}.")
        return x[r], r

    def _keyframe_index(self, row: int) -> int:
        if self.role != "train":
            return int(self.eval_keyframe_index)
        p = self.keyframe_policy
        if p == "parity_2_3":
            return 2 + self.epoch % 2
        if p == "random":
            return int(self._rng(row).integers(schema.FRAMES_PER_CLIP))
        try:
            return int(p)
        except (TypeError, ValueError):
            raise ValueError(
                f"data.keyframe_policy: expected 'parity_2_3', 'random' or a frame index, found {p!r}."
            ) from None

    # -- items -----------------------------------------------------------------------------------------------
    def __getitem__(self, i: int) -> dict[str, Any]:
        row = int(self.rows[i])
        fmri, rep = self._fmri(row)
        kf = self._keyframe_index(row)
        clip_index = int(self._clip_index_array()[row])
        item: dict[str, Any] = {
            "fmri": torch.from_numpy(fmri),
            "clip_index": clip_index,
            "split_index": row,
            "rep": rep,
            "keyframe_index": kf,
        }
        if self.load_frames:
            frames = torch.from_numpy(self._get("frames", row)).float().div_(255.0)
            item["frames"] = frames
            item["keyframe"] = frames[kf]
        if self.load_captions:
            c = self._get("captions", row)
            item["caption"] = c.decode() if isinstance(c, bytes) else str(c)
        if self.targets:
            item["targets"] = {t: self._target(t, row, kf) for t in self.targets}
        if self.inputs:
            item["inputs"] = {k: self._input(k, root, clip_index) for k, root in self.inputs.items()}
        return item

    def _target(self, name: str, row: int, keyframe_index: int) -> torch.Tensor:
        x = self._get("t/" + name, row)
        slots = self._target_slots.get(name)
        if slots is not None:
            if keyframe_index not in slots:
                raise ValueError(
                    f"{self.file}: '/targets/{name}/{self.split}' caches frames {sorted(slots)}, but the keyframe policy "
                    f"asks for frame {keyframe_index}; cache it (targets frame_indices) or change data.keyframe_policy."
                )
            x = x[slots[keyframe_index]]
        return torch.from_numpy(np.asarray(x, dtype=np.float32))

    def _input(self, kind: str, root: str, clip_index: int):
        store = OutputStore(root)
        if kind in TEXT_KINDS:
            return str(store.load_metadata(kind, clip_index).get("text", ""))
        arr = store.load(kind, clip_index)
        t = torch.from_numpy(arr)
        return t.float().div_(255.0) if arr.dtype == np.uint8 else t.float()
