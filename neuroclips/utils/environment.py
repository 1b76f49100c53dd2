"""The process environment neuroclips runs under, in one place: no network, offline experiment tracking, quiet
libraries. Set as defaults (a value the user exported wins) by every entry point before heavy imports, and again
by the runtime for callers that import it directly."""

from __future__ import annotations

import os

DEFAULTS = {
    "HF_HUB_OFFLINE": "1",  # nothing may download weights at run time
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "WANDB_MODE": "offline",  # tracking is local unless the user opts in
    "WANDB_SILENT": "true",
    "TOKENIZERS_PARALLELISM": "false",  # tokenizer threads deadlock in forked DataLoader workers
    "DIFFUSERS_VERBOSITY": "error",
    "TRANSFORMERS_VERBOSITY": "error",
}


def apply_environment_defaults() -> None:
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
