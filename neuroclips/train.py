"""Entry point: ``python -m neuroclips.train stage=<stage> subj=<n> [scale=tiny|paper] [key=value ...]``."""

from __future__ import annotations

import sys

from neuroclips.utils.environment import apply_environment_defaults  # noqa: E402

apply_environment_defaults()  # before the heavy imports read them

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

import neuroclips.utils.resolvers  # noqa: E402,F401  (registers ${nc.cwd:})
from neuroclips.errors import run_reporting_user_errors  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> dict | None:
    from neuroclips.runtime import run

    return run_reporting_user_errors(run, cfg)


if __name__ == "__main__":
    from neuroclips.utils.cli import quote_numeric_group_overrides

    sys.argv = [sys.argv[0], *quote_numeric_group_overrides(sys.argv[1:])]
    main()
