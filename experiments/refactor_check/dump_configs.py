"""Dump the resolved config of every stage x subj x scale x recipe (x experiment=demo) of a checkout, to diff a
config refactor:

    python experiments/refactor_check/dump_configs.py CHECKOUT OUT_DIR
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path


def main() -> None:
    repo, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(repo))  # the checkout's neuroclips (its resolvers) before the installed one
    os.environ.update(NEUROCLIPS_RUNS_DIR="/tmp/RUNS", NEUROCLIPS_DATA_DIR="/tmp/DATA")
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import neuroclips.utils.resolvers  # noqa: F401
    from neuroclips.utils.cli import quote_numeric_group_overrides

    stages = sorted(p.stem for p in (repo / "conf/stage").glob("*.yaml"))
    subjects = sorted(p.stem for p in (repo / "conf/subj").glob("*.yaml"))
    grid = itertools.product(("tiny", "paper"), stages, subjects, ("default", "reference"), (None, "demo"))
    with initialize_config_dir(config_dir=str(repo / "conf"), version_base="1.3"):
        for scale, stage, subj, recipe, experiment in grid:
            overrides = [f"stage={stage}", f"subj={subj}", f"scale={scale}", f"recipe={recipe}"]
            overrides += [f"experiment={experiment}"] if experiment else []
            cfg = compose("config", overrides=quote_numeric_group_overrides(overrides))
            resolved = OmegaConf.to_container(cfg, resolve=True)
            resolved.get("paths", {}).pop("root_dir", None)  # where the checkout lives
            name = f"{scale}_{stage}_{subj}_{recipe}_{experiment}.json"
            (out / name).write_text(json.dumps(resolved, sort_keys=True, indent=1, default=str))
    print(f"dumped {len(list(out.iterdir()))} configs to {out}")


if __name__ == "__main__":
    main()
