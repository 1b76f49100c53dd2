"""Stage ``targets``: run frozen encoders once over the stimuli and cache their outputs in the HDF5 file.

Each encoder is an ``nn.Module`` with ``name`` (dataset name under ``/targets``), ``source`` (``frames`` or
``captions``), ``frame_indices`` (which of the 6 frames to encode; ``None`` = all) and
``output_shape()``/``encode()``. Outputs go to ``/targets/<name>/<split>`` as float16, one row per clip
(``(N, F, *shape)`` for frame sources, ``(N, *shape)`` for captions), with a ``<split>_done`` flag per row: an
interrupted run resumes where it stopped, and a finished encoder is skipped. If an encoder's description changes
(another model or option), the cache is refused unless ``overwrite=true``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import h5py
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from neuroclips.data import schema, validate
from neuroclips.errors import ConfigError
from neuroclips.stage_types import StageResult

log = logging.getLogger("neuroclips")


def describe(encoder: nn.Module) -> str:
    d = encoder.describe() if hasattr(encoder, "describe") else {"class": type(encoder).__qualname__}
    return json.dumps(d, sort_keys=True, default=str)


class ComputeTargets:
    def __init__(
        self,
        encoders: dict[str, nn.Module],
        splits: tuple[str, ...] | list[str] = ("train", "test"),
        batch_size: int = 32,
        overwrite: bool = False,
        limit_clips: int | None = None,
    ):
        self.encoders = {k: v for k, v in dict(encoders).items() if v is not None}
        self.splits = list(splits)
        self.batch_size = batch_size
        self.overwrite = overwrite
        self.limit_clips = limit_clips

    def build_for_dry_run(self) -> dict[str, nn.Module]:
        return dict(self.encoders)

    def run(self, ctx) -> Any:
        ctx.datamodule()  # validates the file (and writes the simulated one if asked to)
        metrics: dict[str, Any] = {}
        for name, enc in self.encoders.items():
            if getattr(enc, "name", name) != name:
                raise ConfigError(
                    f"task.encoders.{name}: the encoder calls itself '{enc.name}'; the key must match it."
                )
            enc.eval().requires_grad_(False).to(ctx.device)
            fingerprint = (getattr(ctx, "target_fingerprints", None) or {}).get(name)
            overwrite = self.overwrite or bool(getattr(ctx, "overwrite_outputs", False))
            for split in self.splits:
                metrics[f"{name}/{split}/encoded"] = self._encode_split(
                    ctx.data_file, enc, name, split, ctx.device, fingerprint, overwrite
                )
        return StageResult(metrics=metrics, outputs={"data_file": ctx.data_file})

    # ------------------------------------------------------------------------------------------------------
    def _prepare(
        self,
        f: h5py.File,
        enc: nn.Module,
        name: str,
        split: str,
        n: int,
        fingerprint: str | None,
        overwrite: bool,
    ) -> tuple[h5py.Dataset, h5py.Dataset]:
        source = enc.source
        if source not in ("frames", "captions"):
            raise ConfigError(
                f"task.encoders.{name}: source expected 'frames' or 'captions', found {source!r}."
            )
        frames, full, desc = _expected(enc, n)
        fi = getattr(enc, "frame_indices", None)
        path, done_path = schema.target_path(name, split), schema.target_done_path(name, split)
        verdict = _cache_verdict(f, path, full, desc, fingerprint)
        if verdict == "fingerprint" and not overwrite:
            # same encoder description, but its weights or the data changed (provenance)
            raise ConfigError(
                f"{f.filename}: '/{path}' was cached under another configuration (fingerprint "
                f"{f[path].attrs.get('fingerprint')}, expected {fingerprint}: the encoder's weights or the data "
                f"changed); pass outputs=overwrite to recompute it."
            )
        if verdict == "other" and not overwrite:
            d = f[path]
            raise ConfigError(
                f"{f.filename}: '/{path}' was cached with another encoder or shape ({d.shape}, {d.attrs.get('config')}); "
                f"expected {full} from {desc}. Pass task.overwrite=true to recompute it."
            )
        if verdict in ("fingerprint", "other"):
            del f[path]
            if done_path in f:
                del f[done_path]
        if path not in f:
            chunk = (1, *full[1:])
            d = f.create_dataset(path, full, np.float16, chunks=chunk)
            d.attrs["encoder"] = name
            d.attrs["config"] = desc
            if fingerprint is not None:
                d.attrs["fingerprint"] = fingerprint
            if (
                fi is not None
            ):  # a subset of frames (keyframes): the DataModule picks the chosen keyframe's slot
                d.attrs["frame_indices"] = np.asarray(frames, np.int64)
            f.create_dataset(done_path, (n,), bool)
        return f[path], f[done_path]

    @torch.no_grad()
    def _encode_split(
        self,
        file: str,
        enc: nn.Module,
        name: str,
        split: str,
        device: torch.device,
        fingerprint: str | None = None,
        overwrite: bool | None = None,
    ) -> int:
        overwrite = self.overwrite if overwrite is None else overwrite
        if not overwrite and _already_cached(file, enc, name, split, fingerprint, self.limit_clips):
            # decided read-only: a rerun over a finished cache never opens the file for writing, so it also runs
            # while training processes of other runs read the file
            log.info("targets/%s/%s: already cached", name, split)
            return 0
        with _open_for_append(file) as f:
            frames_ds = f[schema.stimulus_path(split, "frames")]
            n = frames_ds.shape[0]
            out, done = self._prepare(f, enc, name, split, n, fingerprint, overwrite)
            limit = min(n, self.limit_clips) if self.limit_clips else n
            flags = done[:limit]
            # rows flagged done but holding NaN/Inf (a corrupted cache) are encoded again, like unfinished ones
            stale = validate.nonfinite_rows(out, np.nonzero(flags)[0])
            todo = sorted(set(np.nonzero(~flags)[0].tolist()) | set(stale.tolist()))
            if not todo:
                log.info("targets/%s/%s: already cached", name, split)
                return 0
            fi = out.attrs.get("frame_indices")
            fi = list(range(schema.FRAMES_PER_CLIP)) if fi is None else fi
            captions = f[schema.stimulus_path(split, "captions")]
            bar = tqdm(total=len(todo), desc=f"targets {name}/{split}", unit="clip")
            for start in range(0, len(todo), self.batch_size):
                rows = todo[start : start + self.batch_size]
                if enc.source == "frames":
                    x = np.stack([frames_ds[r][fi] for r in rows])  # (B, F, 3, H, W) uint8
                    b, nf = x.shape[:2]
                    imgs = torch.from_numpy(x.reshape(b * nf, *x.shape[2:])).to(device).float().div_(255.0)
                    y = enc.encode(imgs).float().reshape(b, nf, *out.shape[2:])
                else:
                    texts = [
                        c.decode() if isinstance(c, bytes) else str(c) for c in (captions[r] for r in rows)
                    ]
                    y = enc.encode(texts).float().reshape(len(rows), *out.shape[1:])
                y = y.cpu().numpy().astype(np.float16)
                if not np.isfinite(y).all():
                    raise FloatingPointError(
                        f"targets/{name}/{split}: the encoder produced NaN/Inf for rows {rows[:4]}..."
                    )
                for j, r in enumerate(rows):
                    out[r] = y[j]
                for r in rows:
                    done[r] = True
                f.flush()
                bar.update(len(rows))
            bar.close()
            return len(todo)


def _expected(enc: nn.Module, n: int) -> tuple[list[int] | None, tuple[int, ...], str]:
    """The frames an encoder reads, the shape of its cache for ``n`` clips, and its description."""
    shape = tuple(int(s) for s in enc.output_shape())
    fi = getattr(enc, "frame_indices", None)
    if enc.source == "frames":
        frames = list(range(schema.FRAMES_PER_CLIP)) if fi is None else [int(i) for i in fi]
        return frames, (n, len(frames), *shape), describe(enc)
    return None, (n, *shape), describe(enc)


def _cache_verdict(f: h5py.File, path: str, full: tuple[int, ...], desc: str, fingerprint: str | None) -> str:
    """What ``f[path]`` holds against what this encoder would write: ``absent``; ``same`` (shape, description and,
    when one is given, fingerprint all match); ``fingerprint`` (same shape and description, another fingerprint:
    the weights or the data changed); ``other`` (another encoder or shape). One decision for the read-only check and
    the append path."""
    if path not in f:
        return "absent"
    d = f[path]
    if d.shape != full or d.attrs.get("config") != desc:
        return "other"
    if fingerprint is not None and d.attrs.get("fingerprint") != fingerprint:
        return "fingerprint"
    return "same"


def _already_cached(
    file: str, enc: nn.Module, name: str, split: str, fingerprint: str | None, limit_clips: int | None
) -> bool:
    """True when ``/targets/<name>/<split>`` holds this encoder's finished, finite output (read-only check).
    Anything else (missing, another encoder or fingerprint, unfinished or corrupted rows) goes the append path,
    which resumes, recomputes or refuses it as before."""
    if enc.source not in ("frames", "captions"):
        return False  # the append path names the bad source
    path, done_path = schema.target_path(name, split), schema.target_done_path(name, split)
    try:
        f = h5py.File(file, "r")
    except OSError:
        return False  # the append path reports why the file cannot be opened
    with f:
        if path not in f or done_path not in f:
            return False
        n = f[schema.stimulus_path(split, "frames")].shape[0]
        _, full, desc = _expected(enc, n)
        if _cache_verdict(f, path, full, desc, fingerprint) != "same":
            return False
        d = f[path]
        limit = min(n, limit_clips) if limit_clips else n
        flags = f[done_path][:limit]
        return bool(flags.all()) and not len(validate.nonfinite_rows(d, np.arange(limit)))


def _open_for_append(file: str) -> h5py.File:
    try:
        return h5py.File(file, "a")
    except BlockingIOError as e:  # HDF5's file lock: another process has the file open
        raise ConfigError(
            f"{file}: stage=targets must write to the data file, but another process holds it open (HDF5's file "
            "lock); wait for the runs reading it to finish, or cache targets before starting them."
        ) from e
