"""Captions for the video prompt (γ guidance, method.md §5 "Captioning").

* ``Blip2Captioner``: BLIP-2 (transformers) on the reconstructed keyframe, greedy ``generate`` as the reference
  (``Salesforce/blip2-opt-2.7b``, default generation settings). At ``scale=tiny`` the same class wraps a tiny
  random BLIP-2 whose text decoder uses the CLIP tokenizer, so the path runs offline (its captions are noise).
  Ours: the batch as tensors, bicubic resize in torch, ``max_new_tokens`` greedy tokens. Reference options
  (src/caption.py): ``preprocess="pil"`` (``ToPILImage``, then the BLIP image processor: PIL bicubic resize,
  rescale, CLIP normalisation; one image per call) and ``generation="defaults"`` (``generate()`` with the model's
  own generation config; the length budget is its ``max_length``, counted in new tokens as the reference's
  transformers did when the query tokens entered as embeddings).
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
CAPTION_PREPROCESS = ("tensor", "pil")
CAPTION_GENERATION = ("ours", "defaults")


def to_pil(image: torch.Tensor):
    """torchvision ``ToPILImage`` on a float (3, H, W) image in [0, 1]: ``mul(255).byte()`` (truncation), RGB."""
    from PIL import Image

    array = image.detach().float().cpu().mul(255).to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array, mode="RGB")


class Blip2Captioner(nn.Module):
    """Images (B, 3, H, W) in [0, 1] -> one caption per image (greedy decoding)."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        image_size: int = 224,
        max_new_tokens: int = 20,
        preprocess: str = "tensor",
        generation: str = "ours",
        image_processor=None,
    ) -> None:
        super().__init__()
        if preprocess not in CAPTION_PREPROCESS:
            raise ValueError(
                f"keyframe.caption_preprocess: expected one of {CAPTION_PREPROCESS}, found {preprocess!r}."
            )
        if generation not in CAPTION_GENERATION:
            raise ValueError(
                f"keyframe.caption_generation: expected one of {CAPTION_GENERATION}, found {generation!r}."
            )
        if preprocess == "pil" and image_processor is None:
            raise ValueError(
                "Blip2Captioner preprocess='pil' needs the BLIP image processor (image_processor=...)."
            )
        self.model = model
        self.tokenizer = tokenizer
        self.image_size = image_size
        self.max_new_tokens = max_new_tokens
        self.preprocess_mode, self.generation = preprocess, generation
        self.image_processor = image_processor
        self.register_buffer("mean", torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.float(), size=(self.image_size,) * 2, mode="bicubic", align_corners=False)
        return ((x.clamp(0, 1) - self.mean) / self.std).to(next(self.model.parameters()).dtype)

    def pil_pixel_values(self, image: torch.Tensor) -> torch.Tensor:
        """One image through ``ToPILImage`` and the BLIP image processor, as the reference's caption script."""
        values = self.image_processor(images=to_pil(image), return_tensors="pt")["pixel_values"]
        param = next(self.model.parameters())
        return values.to(device=param.device, dtype=param.dtype)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> list[str]:
        if self.preprocess_mode == "pil":  # one image per generate call, as src/caption.py
            return [caption for image in images for caption in self._caption(self.pil_pixel_values(image))]
        return self._caption(self.preprocess(images))

    def _caption(self, pixel_values: torch.Tensor) -> list[str]:
        if self.generation == "defaults":
            out = self.model.generate(
                pixel_values=pixel_values, max_new_tokens=self.model.generation_config.max_length
            )
        else:
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
            raise schema.SchemaError(
                f"{path}: caption bank needs '/{key}' (cache it with stage=targets) for keyframe.caption_source=nearest_train."
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
