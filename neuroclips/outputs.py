"""The outputs store: one file per clip and kind, written atomically, so predict stages resume and shard freely.

Layout: ``<root>/<kind>/<clip_index:05d>.npy`` (uint8 images/videos or float16 tokens) with an optional
``<clip_index:05d>.json`` sidecar (seed, caption, metadata, and the ``fingerprint`` of the stage run that made it,
neuroclips.provenance). A clip counts as written for a kind when its ``.npy`` (or, for text-only kinds such as
``caption``, its ``.json``) exists; it counts as done only when, in addition, its sidecar's fingerprint is the
current run's (``classify``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from neuroclips.utils.atomic import write_json, write_npy

TEXT_KINDS = {"caption"}


class OutputStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, kind: str, clip_index: int, suffix: str = ".npy") -> Path:
        return self.root / kind / f"{int(clip_index):05d}{suffix}"

    def has(self, kind: str, clip_index: int) -> bool:
        return self.path(kind, clip_index, ".json" if kind in TEXT_KINDS else ".npy").exists()

    def missing(self, kinds: list[str], clip_indices) -> list[int]:
        """Clip indices that lack at least one of ``kinds``."""
        return [int(c) for c in clip_indices if not all(self.has(k, c) for k in kinds)]

    def fingerprint(self, kind: str, clip_index: int) -> str | None:
        """The fingerprint recorded in a clip's sidecar (None when it has none or cannot be read)."""
        try:
            return json.loads(self.path(kind, clip_index, ".json").read_text()).get("fingerprint")
        except (OSError, ValueError, AttributeError):
            return None

    def classify(self, kinds: list[str], clip_indices, fingerprint: str) -> tuple[list[int], list[int]]:
        """``(missing, stale)``: clips lacking a kind, and clips whose every kind exists but at least one was made
        under another fingerprint."""
        missing, stale = [], []
        for c in clip_indices:
            if not all(self.has(k, c) for k in kinds):
                missing.append(int(c))
            elif any(self.fingerprint(k, c) != fingerprint for k in kinds):
                stale.append(int(c))
        return missing, stale

    def done(self, kind: str) -> list[int]:
        d = self.root / kind
        if not d.exists():
            return []
        suffix = ".json" if kind in TEXT_KINDS else ".npy"
        return sorted(int(p.stem) for p in d.glob(f"*{suffix}") if not p.name.startswith("."))

    def save(self, kind: str, clip_index: int, array=None, metadata: dict | None = None) -> None:
        """Write one clip's output; the array last, so an existing ``.npy`` always has its sidecar."""
        if metadata is not None:
            write_json(self.path(kind, clip_index, ".json"), metadata)
        if array is not None:
            arr = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
            write_npy(self.path(kind, clip_index), arr)

    def load(self, kind: str, clip_index: int) -> np.ndarray:
        p = self.path(kind, clip_index)
        if not p.exists():
            raise FileNotFoundError(
                f"{p}: no '{kind}' output for clip {clip_index} (has the stage that writes it run?)."
            )
        return np.load(p, allow_pickle=False)

    def load_metadata(self, kind: str, clip_index: int) -> dict:
        p = self.path(kind, clip_index, ".json")
        if not p.exists():
            raise FileNotFoundError(f"{p}: no '{kind}' metadata for clip {clip_index}.")
        return json.loads(p.read_text())
