"""Fitted tiny BLIP-2 captioner for `stage=standins`: it learns the simulated captions from the training frames.

Why: the random tiny BLIP-2 writes noise, so the demo used the nearest training clip's caption instead. This
stand-in is a `Blip2ForConditionalGeneration` (the tiny architecture of neuroclips.models.captioner, widened to
`hidden_size`) fitted, on the training clips only (validation blocks held out, test clips never read), to map a
frame to its clip's caption (neuroclips.data.simulate `_caption`: colour, shape, motion, background). Every frame
of a clip without a scene cut carries the clip's caption; a clip with a cut contributes its frame 2 only.

Vocabulary: a word-level tokenizer of the training captions' words (plus CLIP's start/end tokens and an unknown
token), saved in the folder beside the model. With the 49,408-token CLIP BPE vocabulary the output softmax alone
made a step ~20× slower on a CPU; the simulated captions use about 30 words.

Layout: a Hugging Face BLIP-2 folder (`save_pretrained` of the model and the tokenizer) — what
`build_captioner(pretrained="local", blip2_dir=...)` reads at paper scale — and fitted *through* that loader (the
loaded captioner's own preprocessing is what is trained). A `standin.json` marker records the data fingerprint and
the settings; a later run re-uses the folder while they match (see TinyVaeStandin.is_current).
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from neuroclips.models.captioner import BLIP2_CONFIGS, build_captioner
from neuroclips.tasks.standin_marker import marker_matches, write_marker
from neuroclips.utils.atomic import atomic_folder

log = logging.getLogger("neuroclips")

BOS, EOS, UNK = "<|startoftext|>", "<|endoftext|>", "[UNK]"


def caption_tokenizer(captions: list[str]):
    """Word-level fast tokenizer of the words in `captions`: ``BOS words EOS``; EOS doubles as padding."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for c in captions for w in c.split()})
    vocab = {BOS: 0, EOS: 1, UNK: 2} | {w: i + 3 for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, 0), (EOS, 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=EOS, unk_token=UNK
    )


def captioner_config(vocab_size: int, hidden_size: int, image_size: int, patch_size: int) -> dict:
    """BLIP2_CONFIGS["tiny"] at width `hidden_size` (feed-forward 2×) with the word vocabulary (+1 image token)."""
    cfg = copy.deepcopy(BLIP2_CONFIGS["tiny"])
    width = dict(hidden_size=hidden_size)
    cfg["vision_config"].update(
        width, intermediate_size=2 * hidden_size, image_size=image_size, patch_size=patch_size
    )
    cfg["qformer_config"].update(width, intermediate_size=2 * hidden_size, encoder_hidden_size=hidden_size)
    cfg["text_config"].update(
        width,
        ffn_dim=2 * hidden_size,
        word_embed_proj_dim=hidden_size,
        vocab_size=vocab_size + 1,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    cfg["image_token_index"] = vocab_size
    return cfg


def read_captioned_frames(data_file: str | Path, rows: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """uint8 frames (M, 3, H, W) and their captions for these training-split rows (see module docstring)."""
    with h5py.File(data_file, "r") as f:
        train = f["stimuli/train"]
        keep = np.sort(rows)
        frames = train["frames"][:][keep]
        cut = train["scene_cut"][:][keep]
        captions = [c.decode() if isinstance(c, bytes) else str(c) for c in train["captions"][:][keep]]
    images, texts = [], []
    for clip, caption, has_cut in zip(frames, captions, cut):
        for frame in clip[2:3] if has_cut else clip:
            images.append(frame)
            texts.append(caption)
    return np.stack(images), texts


def word_accuracy(predicted: list[str], true: list[str]) -> dict[str, float]:
    """Exact-match rate and position-wise word accuracy (over the true caption's words), averaged over captions."""
    words = [
        np.mean([a == b for a, b in zip(p.split() + [""] * len(t.split()), t.split())])
        for p, t in zip(predicted, true)
    ]
    return {
        "exact_match": float(np.mean([p == t for p, t in zip(predicted, true)])),
        "word_accuracy": float(np.mean(words)),
    }


def fit_captioner(captioner, frames: np.ndarray, captions: list[str], *, steps, batch_size, lr, seed) -> dict:
    """Teacher-forced next-word cross-entropy on [query tokens, BOS, words, EOS], exactly `steps` steps."""
    model, tokenizer = captioner.model, captioner.tokenizer
    queries = model.config.num_query_tokens
    enc = tokenizer(captions, padding="longest", return_tensors="pt")
    n = enc.input_ids.shape[0]
    input_ids = torch.cat([torch.full((n, queries), model.config.image_token_index), enc.input_ids], 1)
    attention = torch.cat([torch.ones(n, queries, dtype=enc.attention_mask.dtype), enc.attention_mask], 1)
    labels = input_ids.masked_fill(attention == 0, -100)
    labels[:, : queries + 1] = -100  # neither the image tokens nor BOS are predicted
    with torch.no_grad():
        pixels = captioner.preprocess(torch.from_numpy(frames).float().div(255.0))
    generator = torch.Generator().manual_seed(seed)
    model.requires_grad_(True).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    start, loss = time.time(), torch.tensor(float("nan"))
    for step in range(steps):
        index = torch.randint(0, n, (batch_size,), generator=generator)
        batch = pixels[index]
        if torch.rand((), generator=generator) < 0.5:  # a mirrored frame keeps colour, shape and background
            batch = batch.flip(-1)
        shift = torch.randint(-3, 4, (2,), generator=generator).tolist()
        batch = batch.roll(shift, dims=(-2, -1))
        out = model(
            pixel_values=batch,
            input_ids=input_ids[index],
            attention_mask=attention[index],
            labels=labels[index],
        )
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        scheduler.step()
        loss = out.loss.detach()
        if (step + 1) % max(1, steps // 5) == 0:
            log.info("standins: captioner step %d/%d, cross-entropy %.3f", step + 1, steps, float(loss))
    model.eval().requires_grad_(False)
    return {"steps": steps, "loss": float(loss), "seconds": round(time.time() - start, 1)}


class TinyCaptionerStandin:
    """Fits and saves the tiny BLIP-2 captioner (see module docstring); called by TinyVaeStandin.run."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        out_dir: str | None,
        steps: int = 1000,
        batch_size: int = 32,
        lr: float = 2e-3,
        hidden_size: int = 64,
        image_size: int = 32,
        patch_size: int = 4,
        max_new_tokens: int = 16,
        seed: int = 0,
    ) -> None:
        if enabled and not out_dir:
            raise ValueError(f"scale.standins.captioner: enabled=true needs dir, found {out_dir!r}.")
        self.enabled = enabled
        self.out_dir = Path(out_dir) if out_dir else None
        self.training = dict(steps=steps, batch_size=batch_size, lr=lr)
        self.architecture = dict(hidden_size=hidden_size, image_size=image_size, patch_size=patch_size)
        self.max_new_tokens, self.seed = max_new_tokens, seed

    def settings(self) -> dict:
        return {"training": self.training, "architecture": self.architecture, "seed": self.seed}

    def is_current(self, fingerprint: dict) -> bool:
        return marker_matches(self.out_dir, {"fingerprint": fingerprint, "settings": self.settings()})

    def fit_and_save(self, data_file: str, held_out_rows: np.ndarray, fingerprint: dict) -> dict:
        """Fit on the training rows without `held_out_rows`; report caption accuracy on the held-out rows."""
        from transformers import Blip2Config, Blip2ForConditionalGeneration

        from neuroclips.models.generator_loading import seeded_init

        with h5py.File(data_file, "r") as f:
            n_train = f["stimuli/train/frames"].shape[0]
        frames, captions = read_captioned_frames(data_file, np.setdiff1d(np.arange(n_train), held_out_rows))
        tokenizer = caption_tokenizer(captions)
        config = captioner_config(len(tokenizer), **self.architecture)
        with atomic_folder(self.out_dir) as tmp:  # a killed run never leaves a half-written model
            with seeded_init(self.seed):
                Blip2ForConditionalGeneration(Blip2Config(**config)).save_pretrained(str(tmp))
            tokenizer.save_pretrained(str(tmp))
            # fitted through the paper-scale loader, so with the preprocessing the keyframe stage uses
            captioner = self.load(tmp)
            with seeded_init(self.seed):  # dropout draws from the global RNG
                stats = fit_captioner(captioner, frames, captions, seed=self.seed, **self.training)
            val_frames, val_captions = read_captioned_frames(data_file, held_out_rows)
            with torch.no_grad():
                predicted = captioner(torch.from_numpy(val_frames).float().div(255.0))
            stats["validation"] = word_accuracy(predicted, val_captions)
            stats["frames"], stats["vocabulary"] = int(frames.shape[0]), len(tokenizer)
            captioner.model.save_pretrained(str(tmp))
            write_marker(tmp, {"fingerprint": fingerprint, "settings": self.settings(), "fit": stats})
        log.info("standins: fitted captioner %s -> %s", stats, self.out_dir)
        return stats

    def load(self, folder: str | Path | None = None):
        """The captioner through the paper-scale loader (``build_captioner(pretrained="local")``)."""
        return build_captioner(
            pretrained="local", blip2_dir=str(folder or self.out_dir), max_new_tokens=self.max_new_tokens
        )
