"""The whole pipeline as one command: every stage in order, chained through config, resumable.

``python -m neuroclips.pipeline experiment=demo subj=1 [stages=sr,pr] [force=false] [any Hydra override ...]``

Each stage runs as its own ``python -m neuroclips.train stage=<stage> ...`` process with the same overrides, so
a stage sees exactly what a user would type. Stages find their inputs by path (``${paths.run_root}/<stage>``).
A stage whose ``summary.json`` says it finished is skipped (``force=true`` reruns it; fit stages then resume
from their last checkpoint, predict stages only compute missing clips). The first failing stage stops the run
with its exit code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

STAGES = ("standins", "targets", "sr", "sr_prior", "pr", "blurry", "keyframe", "video", "eval")


def _parse(argv: list[str]) -> tuple[list[str], bool, list[str]]:
    stages, force, rest = list(STAGES), False, []
    for a in argv:
        if a.startswith("stages="):
            stages = [s for s in a.split("=", 1)[1].split(",") if s]
            unknown = [s for s in stages if not (Path(__file__).parents[1] / "conf" / "stage" / f"{s}.yaml").exists()]
            if unknown:
                raise SystemExit(f"pipeline: unknown stage(s) {unknown}; known: {', '.join(STAGES)}.")
        elif a.startswith("force="):
            force = a.split("=", 1)[1].lower() in ("1", "true", "yes")
        elif a.startswith("stage="):
            raise SystemExit("pipeline: use stages=a,b,c (the pipeline sets stage= for each step).")
        else:
            rest.append(a)
    return stages, force, rest


def _resolve_run_root(overrides: list[str]) -> Path:
    """Ask Hydra where this configuration's runs go (so env vars and overrides are honoured)."""
    from hydra import compose, initialize_config_dir

    import neuroclips.utils.resolvers  # noqa: F401

    conf = str(Path(__file__).resolve().parents[1] / "conf")
    with initialize_config_dir(config_dir=conf, version_base="1.3"):
        cfg = compose("config", overrides=["stage=sr", *overrides], return_hydra_config=True)
        from hydra.core.hydra_config import HydraConfig

        HydraConfig.instance().set_config(cfg)
        return Path(str(cfg.paths.run_root))


def main(argv: list[str] | None = None) -> int:
    from neuroclips.utils.cli import quote_numeric_group_overrides

    stages, force, overrides = _parse(quote_numeric_group_overrides(sys.argv[1:] if argv is None else argv))
    root = _resolve_run_root(overrides)
    t_all = time.time()
    print(f"[pipeline] {len(stages)} stages -> {root}", flush=True)
    timings = {}
    for i, stage in enumerate(stages, 1):
        summary = root / stage / "summary.json"
        if summary.exists() and not force and json.loads(summary.read_text()).get("status") == "finished":
            print(f"[pipeline] ({i}/{len(stages)}) {stage}: already finished, skipped ({summary})", flush=True)
            continue
        print(f"[pipeline] ({i}/{len(stages)}) {stage} ...", flush=True)
        t0 = time.time()
        cmd = [sys.executable, "-m", "neuroclips.train", f"stage={stage}", *overrides]
        proc = subprocess.run(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        timings[stage] = round(time.time() - t0, 1)
        if proc.returncode != 0:
            print(f"[pipeline] stage {stage} failed (exit {proc.returncode}); rerun the same command to resume.", file=sys.stderr)
            return proc.returncode
        print(f"[pipeline] ({i}/{len(stages)}) {stage} done in {timings[stage]}s", flush=True)
    total = round(time.time() - t_all, 1)
    print(f"[pipeline] finished in {total}s: " + ", ".join(f"{k} {v}s" for k, v in timings.items()), flush=True)
    eval_summary = root / "eval" / "summary.json"
    if eval_summary.exists():
        outs = json.loads(eval_summary.read_text()).get("outputs", {})
        if "report" in outs:
            print(f"[pipeline] report: {outs['report']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
