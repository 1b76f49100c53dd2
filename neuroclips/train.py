"""Entry point: ``python -m neuroclips.train stage=<stage> subj=<n> [scale=tiny|paper] [key=value ...]``."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from neuroclips.errors import USER_ERRORS, format_user_error  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> dict | None:
    from neuroclips.runtime import run

    try:
        return run(cfg)
    except USER_ERRORS as e:
        print(format_user_error(e), file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
