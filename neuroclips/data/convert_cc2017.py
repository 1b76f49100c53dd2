"""Convert the released cc2017 files (NeuroClips' HF dataset layout) into one neuroclips HDF5 file.

Expected in ``src`` (method.md §2.2)::

    subj0{1,2,3}_train_fmri.pt   (4320, 2, V)     subj0{1,2,3}_test_fmri.pt   (1200, 10, V)
    GT_train_3fps.pt             (4320, 6, 3, 224, 224) in [0, 1]
    GT_test_3fps.pt              (1200, 6, 3, H, W) in [0, 1]  (H = W = 256 in the release; recorded)
    GT_{train,test}_caption.pt   numpy array of N strings           (optional)
    GT_{train,test}_caption_emb.pt (N, 1280)                         (optional; cached as /targets/caption_emb)

Safety: every file is read with ``torch.load(weights_only=True)`` and only the numpy types that a string array
needs are allow-listed, so a file cannot run code. Memory: tensors are memory-mapped and streamed into the HDF5
file in chunks (the frames are never held twice). The output is written to a temporary file and renamed at the
end: a failed conversion leaves no half file.

Usage: ``python -m neuroclips.data.convert_cc2017 src=DIR out=FILE [subjects=1,2,3] [chunk=64]``
"""

from __future__ import annotations

import os
import pickle
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import torch
from tqdm.auto import tqdm

from neuroclips.data import schema
from neuroclips.utils.atomic import atomic_path
from neuroclips.utils.files import special_kind
from neuroclips.utils.images import to_uint8

SEGMENT_CLIPS = 240  # 8-minute movie segments at one clip per 2 s TR


def _numpy_safe_globals() -> list:
    from numpy import dtypes

    core = getattr(np, "_core", None) or np.core  # numpy 2 moved multiarray under numpy._core
    # only array reconstruction and dtype classes: enough for numpy arrays of strings or numbers, nothing callable
    allowed = [core.multiarray._reconstruct, np.ndarray, np.dtype]
    allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return allowed


def safe_load(path: Path, mmap: bool = True):
    """``torch.load`` with ``weights_only=True`` (plus numpy string arrays); memory-mapped when possible."""
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            try:
                return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
            except (RuntimeError, ValueError) as e:
                if mmap and "mmap" in str(e).lower():  # legacy (non-zip) format cannot be mapped
                    return torch.load(path, map_location="cpu", weights_only=True, mmap=False)
                raise
    except pickle.UnpicklingError as e:
        raise schema.SchemaError(
            f"{path}: refused to unpickle (expected tensors or a numpy string array; found other Python objects, "
            f"which could run code): {str(e).splitlines()[0]}"
        ) from e
    except (zipfile.BadZipFile, EOFError, RuntimeError) as e:
        raise schema.SchemaError(f"{path}: cannot be read as a torch file ({type(e).__name__}: {e}).") from e


def _as_tensor(obj, path: Path, what: str) -> torch.Tensor:
    if isinstance(obj, np.ndarray):
        obj = torch.from_numpy(obj)
    if not isinstance(obj, torch.Tensor):
        raise schema.SchemaError(f"{path}: expected a tensor of {what}, found {type(obj).__name__}.")
    return obj


def _not_strings(obj) -> str | None:
    """What ``obj`` holds if it is not a list/tuple/numpy array of strings, else None."""
    if isinstance(obj, (list, tuple)) or (isinstance(obj, np.ndarray) and obj.dtype.kind == "O"):
        items = list(obj) if isinstance(obj, (list, tuple)) else obj.reshape(-1).tolist()
        bad = next((i for i, x in enumerate(items) if not isinstance(x, (str, bytes))), None)
        return None if bad is None else f"a {type(items[bad]).__name__} at position {bad}"
    if isinstance(obj, np.ndarray):
        return None if obj.dtype.kind in "US" else f"a numpy array of {obj.dtype}"
    if isinstance(obj, torch.Tensor):
        return f"a {obj.dtype} tensor"
    return f"a {type(obj).__name__}"


def _strings(obj, path: Path, n: int) -> list[str]:
    found = _not_strings(obj)
    if found:
        raise schema.SchemaError(
            f"{path}: expected {n} caption strings (a list or numpy array of str), found {found}."
        )
    arr = np.asarray(obj).reshape(-1)
    if arr.shape[0] != n:
        raise schema.SchemaError(f"{path}: expected {n} captions (one per clip), found {arr.shape[0]}.")
    return [x.decode() if isinstance(x, bytes) else str(x) for x in arr.tolist()]


TORCH_MAGIC = (b"PK\x03\x04", b"\x80")  # zip-format torch files; legacy torch files (a pickle, protocol 2+)


def _source(p: Path) -> bool:
    """Whether the source entry ``p`` exists; refuses one that is not a regular .pt file (or a link to one)."""
    if not os.path.lexists(p):
        return False
    kind = special_kind(p)
    if p.is_symlink():
        target = Path(os.path.realpath(p))
        if kind is None and target.is_file():
            with open(target, "rb") as fh:
                head = fh.read(4)
            if target.suffix == ".pt" or head.startswith(TORCH_MAGIC):  # HF caches link to suffix-less blobs
                return True
        raise schema.SchemaError(
            f"{p}: expected a .pt file or a symbolic link to one (src=), found a link to {target} "
            f"({kind or ('a folder' if target.is_dir() else 'not a torch file')})."
        )
    if kind is not None or not p.is_file():
        raise schema.SchemaError(f"{p}: expected a regular .pt file (src=), found {kind or 'a folder'}.")
    return True


def convert(
    src: str | Path,
    out: str | Path,
    subjects: list[int] | None = None,
    chunk: int = 64,
    progress: bool = True,
) -> Path:
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise schema.SchemaError(
            f"{src}: source folder does not exist (expected the released cc2017 .pt files)."
        )
    subjects = subjects or [s for s in (1, 2, 3) if (src / f"subj0{s}_train_fmri.pt").exists()]
    if not subjects:
        raise schema.SchemaError(
            f"{src}: no 'subj0N_train_fmri.pt' found (expected at least one subject's fMRI)."
        )
    frames, n = {}, {}
    for split in schema.SPLITS:
        p = src / f"GT_{split}_3fps.pt"
        if not _source(p):
            raise schema.SchemaError(f"{p}: missing (expected the {split} frames, shape (N, 6, 3, H, W)).")
        t = _as_tensor(safe_load(p), p, "frames")
        if t.ndim != 5 or t.shape[1] != schema.FRAMES_PER_CLIP or t.shape[2] != 3:
            raise schema.SchemaError(f"{p}: expected shape (N, 6, 3, H, W), found {tuple(t.shape)}.")
        if t.dtype not in (torch.uint8, torch.float16, torch.float32, torch.float64, torch.bfloat16):
            raise schema.SchemaError(f"{p}: expected float frames in [0, 1] or uint8, found dtype {t.dtype}.")
        frames[split], n[split] = t, t.shape[0]
    fmri = {}
    for s in subjects:
        for split in schema.SPLITS:
            p = src / f"subj0{s}_{split}_fmri.pt"
            if not _source(p):
                raise schema.SchemaError(f"{p}: missing (subject {s}, {split} fMRI).")
            t = _as_tensor(safe_load(p), p, "fMRI")
            reps, v = schema.REPETITIONS[split], schema.SUBJECT_VOXELS[s]
            if t.shape != (n[split], reps, v):
                raise schema.SchemaError(
                    f"{p}: expected shape ({n[split]}, {reps}, {v}) (clips as in GT_{split}_3fps.pt, {reps} repetitions, "
                    f"{v} voxels of subject {s}), found {tuple(t.shape)}."
                )
            fmri[(s, split)] = t
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as f:
            schema.write_root_attrs(f, "cc2017", {s: schema.SUBJECT_VOXELS[s] for s in subjects})
            for split in schema.SPLITS:
                h, w = frames[split].shape[3:]
                f.attrs[f"{split}_frame_size"] = np.array([h, w])
                ds = schema.create_stimuli(f, split, n[split], h, w)
                for i in tqdm(range(0, n[split], chunk), desc=f"frames {split}", disable=not progress):
                    block = frames[split][i : i + chunk]
                    if block.is_floating_point() and (block.min() < -1e-3 or block.max() > 1 + 1e-3):
                        raise schema.SchemaError(
                            f"{src}/GT_{split}_3fps.pt: expected values in [0, 1], found [{float(block.min()):.3f}, {float(block.max()):.3f}]."
                        )
                    ds["frames"][i : i + chunk] = to_uint8(block)
                idx = np.arange(n[split])
                ds["clip_index"][...] = idx
                ds["segment"][...] = idx // SEGMENT_CLIPS + (1000 if split == "test" else 0)
                ds["scene_cut"][...] = False  # not in the release; unknown
                cap = src / f"GT_{split}_caption.pt"
                ds["captions"][...] = (
                    _strings(safe_load(cap, mmap=False), cap, n[split]) if _source(cap) else [""] * n[split]
                )
                emb = src / f"GT_{split}_caption_emb.pt"
                if _source(emb):
                    e = _as_tensor(safe_load(emb), emb, "caption embeddings")
                    if e.ndim != 2 or e.shape[0] != n[split]:
                        raise schema.SchemaError(
                            f"{emb}: expected shape ({n[split]}, D), found {tuple(e.shape)}."
                        )
                    d = f.create_dataset(
                        schema.target_path("caption_emb", split), data=e.float().numpy().astype(np.float16)
                    )
                    d.attrs["encoder"] = "caption_emb"
                    d.attrs["config"] = '{"source": "cc2017 release GT_caption_emb"}'
                    f.create_dataset(
                        schema.target_done_path("caption_emb", split), data=np.ones(n[split], bool)
                    )
            for (s, split), t in fmri.items():
                d = schema.create_fmri(f, s, split, n[split], schema.SUBJECT_VOXELS[s], dtype=np.float32)
                for i in tqdm(
                    range(0, n[split], chunk * 8), desc=f"fmri subj{s} {split}", disable=not progress
                ):
                    block = t[i : i + chunk * 8].float().numpy()
                    if not np.isfinite(block).all():
                        raise schema.SchemaError(
                            f"{src}/subj0{s}_{split}_fmri.pt: expected finite voxel values, found NaN/Inf near clip {i}."
                        )
                    d[i : i + chunk * 8] = block
        errors = schema.validate(tmp, subjects=subjects)
        if errors:
            raise schema.SchemaError("\n".join(errors))
    return out


def _int_list(value: str, key: str, example: str) -> list[int]:
    try:
        out = [int(v) for v in value.split(",")]
    except ValueError:
        raise schema.SchemaError(
            f"convert_cc2017: {key}= expected integers such as {example}, found {value!r}."
        ) from None
    if key == "subjects" and any(v not in schema.SUBJECT_VOXELS for v in out):
        raise schema.SchemaError(f"convert_cc2017: subjects= expected some of 1,2,3, found {value!r}.")
    return out


def main(argv: list[str] | None = None) -> int:
    args = {}
    for a in sys.argv[1:] if argv is None else argv:
        if "=" not in a:
            raise SystemExit(f"convert_cc2017: expected key=value arguments (src=DIR out=FILE), found {a!r}.")
        k, v = a.split("=", 1)
        args[k.lstrip("-")] = v
    if "src" not in args or "out" not in args:
        raise SystemExit(
            "convert_cc2017: usage: python -m neuroclips.data.convert_cc2017 src=DIR out=FILE [subjects=1,2,3]"
        )
    try:
        subjects = _int_list(args["subjects"], "subjects", "1,2,3") if "subjects" in args else None
        chunk = _int_list(args.get("chunk", "64"), "chunk", "64")
        if len(chunk) != 1 or chunk[0] < 1:
            raise schema.SchemaError(
                f"convert_cc2017: chunk= expected one positive integer, found {args['chunk']!r}."
            )
        out = convert(args["src"], args["out"], subjects, chunk[0])
    except schema.SchemaError as e:
        print(f"neuroclips: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
