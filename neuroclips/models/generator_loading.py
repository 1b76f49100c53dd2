"""Shared pieces of the frozen-generator builders: choice checks, meta-device detection, seeded random init, local
checkpoint reading and the offline CLIP tokenizer.

``pretrained="local"`` loads weights from local files given in config (never from the hub; a missing file raises one
sentence naming it and its config field). ``pretrained="random"`` builds the same classes with random weights at the
configured ``size``: ``tiny`` (seconds on a CPU, for tests) or ``paper`` (the real architecture hyperparameters,
from generation-notes.md; for shape checks on the ``meta`` device and GPU benchmarks).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
from pathlib import Path

import torch
from transformers import CLIPTokenizer

from neuroclips.utils.weights import read_weight_file

# The tiny VAE the fitted unCLIP and video generator share (one fitted file, tasks/standin_generator_vae.py): one
# architecture, written once; each generator's config adds its own scaling_factor (unclip6's, SD-1.5's).
TINY_SHARED_VAE = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    layers_per_block=1,
    sample_size=32,
    block_out_channels=[16, 32, 32],
    down_block_types=["DownEncoderBlock2D"] * 3,
    up_block_types=["UpDecoderBlock2D"] * 3,
    norm_num_groups=4,
)


def check_choice(field: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"{field}: expected one of {sorted(choices)}, found {value!r}.")


def building_on_meta() -> bool:
    """True inside ``with torch.device("meta")`` (dry runs): build architectures, read no files."""
    return torch.empty(0).device.type == "meta"


@contextlib.contextmanager
def seeded_init(seed: int):
    """Random initialisation from ``seed`` without touching the caller's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def randomize_zero_init(*modules: torch.nn.Module) -> int:
    """Give zero-initialised weight matrices/kernels random values (std 1/√fan_in); returns how many.

    SparseCtrl's output convolutions and the motion modules' output projections start at zero, so with random
    weights the keyframe and the motion modules would have no effect at all and tests could not see them.
    """
    count = 0
    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                if p.ndim >= 2 and p.device.type != "meta" and not p.any():
                    p.normal_(0.0, p[0].numel() ** -0.5)
                    count += 1
    return count


def load_checkpoint_dict(
    path: str | os.PathLike, field: str, trust_pickle: bool = False, trust_field: str | None = None
) -> dict[str, torch.Tensor]:
    """Tensors of a local checkpoint (.safetensors, .ckpt/.pth/.bin), unwrapped from state_dict/controlnet wrappers.

    Read by the one weight-file reader (utils.weights.read_weight_file): pickles only when ``trust_pickle``."""
    state = read_weight_file(path, field, "a weight file", trust_pickle, trust_field)
    for wrapper in (
        "state_dict",
        "controlnet",
        "module",
        "model",
    ):  # "model": ViFi-CLIP's training checkpoints
        if isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def clip_tokenizer(model_max_length: int = 77) -> CLIPTokenizer:
    """The OpenAI CLIP BPE tokenizer (= SD-1.5's), rebuilt offline from the vocabulary file open_clip ships."""
    import open_clip
    from open_clip.tokenizer import bytes_to_unicode

    bpe = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(bpe).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]  # transformers 5 wants tuples
    vocab = list(bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(
        vocab={t: i for i, t in enumerate(vocab)}, merges=merges, model_max_length=model_max_length
    )


def write_config_folder(root: Path, subfolder: str, config: dict, name: str = "config.json") -> Path:
    folder = root / subfolder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(config))
    return folder
