"""Write each clip of a predict stage into the outputs store as soon as its batch is done (resumable, per rank)."""

from __future__ import annotations

from typing import Any

import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from neuroclips.outputs import OutputStore
from neuroclips.utils.images import to_uint8

PIXEL_KINDS = {"keyframe", "blurry", "video", "fused_video", "frames", "keyframe_init"}  # stored as uint8


class PredictionWriter(BasePredictionWriter):
    """``predict_step`` returns ``{"clip_index": (B,), <kind>: tensor (B, ...) | list[str], "seed": (B,)?,
    "meta": list[dict]?}``; each kind named in ``kinds`` is saved per clip (images as uint8, other tensors float16,
    strings as ``{"text": ...}`` JSON), its sidecar recording the run's ``fingerprint``. The runtime puts this
    writer after the stage's other callbacks (media), so a clip's ``.npy``, which marks it done, is written last."""

    def __init__(self, store: OutputStore, kinds: list[str], stage: str, fingerprint: str | None = None):
        super().__init__(write_interval="batch")
        self.store, self.kinds, self.stage, self.fingerprint = store, list(kinds), stage, fingerprint

    def write_on_batch_end(
        self, trainer, pl_module, prediction: Any, batch_indices, batch, batch_idx, dataloader_idx=0
    ):
        if prediction is None:
            return
        clips = prediction["clip_index"]
        clips = clips.tolist() if isinstance(clips, torch.Tensor) else list(clips)
        seeds = prediction.get("seed")
        metas = prediction.get("meta") or [{} for _ in clips]
        for i, clip in enumerate(clips):
            base = {"clip_index": int(clip), "stage": self.stage, **metas[i], "fingerprint": self.fingerprint}
            if seeds is not None:
                base["seed"] = int(seeds[i])
            for kind in self.kinds:
                if kind not in prediction:
                    raise KeyError(
                        f"stage '{self.stage}': predict_step returned no '{kind}' (it returned {sorted(prediction)})."
                    )
                value = prediction[kind][i]
                if isinstance(value, str):
                    self.store.save(kind, clip, None, {**base, "text": value})
                    continue
                arr = (
                    to_uint8(value) if kind in PIXEL_KINDS else value.detach().to(torch.float16).cpu().numpy()
                )
                self.store.save(kind, clip, arr, base)
