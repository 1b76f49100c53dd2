"""Captions for the video prompt (γ guidance, method.md §5 "Captioning").

* ``Blip2Captioner``: BLIP-2 (transformers) on the reconstructed keyframe, greedy ``generate`` as the reference
  (``Salesforce/blip2-opt-2.7b``, default generation settings). At ``scale=tiny`` the same class wraps a tiny
  random BLIP-2 whose text decoder uses the CLIP tokenizer, so the path runs offline (its captions are noise).
* ``NearestCaptionBank``: the cheap option: the caption of the training clip whose cached CLIP tokens
  (mean-pooled, cosine) are nearest to the predicted tokens. No captioner at all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # BLIP-2's image processor normalisation
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class Blip2Captioner(nn.Module):
    """Images (B, 3, H, W) in [0, 1] -> one caption per image (greedy decoding)."""

    def __init__(self, model: nn.Module, tokenizer, image_size: int = 224, max_new_tokens: int = 20) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.image_size = image_size
        self.max_new_tokens = max_new_tokens
        self.register_buffer("mean", torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.float(), size=(self.image_size,) * 2, mode="bicubic", align_corners=False)
        return ((x.clamp(0, 1) - self.mean) / self.std).to(next(self.model.parameters()).dtype)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> list[str]:
        pixel_values = self.preprocess(images)
        out = self.model.generate(
            pixel_values=pixel_values, max_new_tokens=self.max_new_tokens, do_sample=False
        )
        # Decoder-only generate returns the prompt (query-token placeholders + BOS) before the new tokens.
        prompt_len = self.model.config.num_query_tokens + 1
        if out.shape[1] > prompt_len and bool(
            (out[:, : self.model.config.num_query_tokens] == self.model.config.image_token_id).all()
        ):
            out = out[:, prompt_len:]
        vocab = len(self.tokenizer)
        out = out.masked_fill(out >= vocab, self.tokenizer.eos_token_id or 0)
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]


class NearestCaptionBank(nn.Module):
    """Training captions with one unit-norm CLIP embedding each; ``forward(tokens)`` returns the nearest captions."""

    def __init__(self, embeddings: torch.Tensor, captions: list[str]) -> None:
        super().__init__()
        if embeddings.shape[0] != len(captions):
            raise ValueError(f"caption bank: {embeddings.shape[0]} embeddings but {len(captions)} captions.")
        self.register_buffer("embeddings", F.normalize(embeddings.float(), dim=-1), persistent=False)
        self.captions = list(captions)

    @torch.no_grad()
    def forward(self, tokens: torch.Tensor) -> list[str]:
        """tokens (B, T, D) or (B, D) in the bank's CLIP space."""
        query = tokens.float().mean(1) if tokens.ndim == 3 else tokens.float()
        sims = F.normalize(query, dim=-1) @ self.embeddings.to(query.device).T
        return [self.captions[i] for i in sims.argmax(-1).tolist()]


def load_caption_bank(
    data_file: str, target: str = "clip_tokens", split: str = "train", chunk: int = 256
) -> NearestCaptionBank:
    """Read the bank from the data file: mean-pooled ``/targets/<target>/<split>`` (first cached frame) + captions."""
    import h5py

    from neuroclips.data import schema

    path = Path(data_file)
    with h5py.File(path, "r") as f:
        key = schema.target_path(target, split)
        if key not in f:
            raise KeyError(
                f"{path}: caption bank needs '/{key}' (cache it with stage=targets) for gen.caption.source=nearest_train."
            )
        ds = f[key]
        rows = []
        for start in range(0, ds.shape[0], chunk):
            block = np.asarray(ds[start : start + chunk], dtype=np.float32)
            while block.ndim > 3:  # (N, F, T, D): the first cached frame slot
                block = block[:, 0]
            rows.append(torch.from_numpy(block.mean(1) if block.ndim == 3 else block))
        raw = f[schema.stimulus_path(split, "captions")][:]
    captions = [c.decode() if isinstance(c, bytes) else str(c) for c in raw]
    return NearestCaptionBank(torch.cat(rows), captions)
