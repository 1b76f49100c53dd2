"""Does the tiny Perceptual Reconstructor leave its predict-the-mean plateau, seed after seed?

For each seed, trains `stage=pr` at the demo's settings (`experiment=demo`, scale=tiny, cached latents) through the
real CLI and reads the per-epoch validation PixCorr from its CSV log. A seed is "on the plateau" at an epoch while
its val PixCorr is not above the mean training frame's val PixCorr (the prediction a model that ignores the fMRI
makes). Reports, per seed, the first epoch above that baseline and the final val PixCorr, as a Markdown table.

The stand-in VAE and the cached latents come from one `stage=standins` + `stage=targets` run (seed 42, the demo's);
only the PR's seed varies. Extra Hydra overrides after `--` go to every PR run (e.g. the head option under test).

Usage (repo root):
  python experiments/simulated_benchmark/pr_plateau_seeds.py --seeds 0 1 2 3 4 5 6 7 8 9 \
      --out experiments/simulated_benchmark/pr_plateau.md [-- scale.pr.net.low_level_norm=group]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from generated_block import write_block  # this folder's helper (scripts run from here)

from neuroclips.metrics.mean_frame import mean_frame_val_pixcorr

REPO = Path(__file__).resolve().parents[2]


def cli(module: str, args: list[str], env: dict) -> float:
    start = time.time()
    command = [sys.executable, "-m", module, *args]
    print("$", " ".join(command[1:]), flush=True)
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"command failed: {' '.join(args)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return time.time() - start


def val_pixcorr_per_epoch(run_dir: Path) -> list[float]:
    """Epoch-end val/pixcorr values, in epoch order, from the CSV logger's metrics.csv."""
    values: dict[int, float] = {}
    with (run_dir / "logs" / "metrics.csv").open() as f:
        for row in csv.DictReader(f):
            if row.get("val/pixcorr"):
                values[int(row["epoch"])] = float(row["val/pixcorr"])
    return [values[e] for e in sorted(values)]


def first_epoch_above(values: list[float], threshold: float) -> int | None:
    return next((epoch for epoch, v in enumerate(values) if v > threshold), None)


def write_table(
    rows: list, baseline: float, recipe: dict, args: argparse.Namespace, extra: list[str]
) -> None:
    """The Markdown table of the seeds done so far (rewritten after every seed: a long run keeps its results)."""
    stuck = [seed for seed, _, values, _ in rows if values[-1] <= baseline]  # on the plateau at the end
    finals = np.array([values[-1] for _, _, values, _ in rows])
    tag = "pr_plateau" + (f"_{args.tag}" if args.tag else "")
    epochs = recipe["max_epochs"]
    lines = [
        f"### {'Defaults' if not extra else 'Overrides ' + ' '.join(f'`{a}`' for a in extra)}: train.pr "
        + ", ".join(f"{k} {v}" for k, v in recipe.items()),
        "",
        f"`stage=pr experiment=demo` (scale=tiny, {epochs} epochs, cached latents), one run per PR seed; stand-in VAE "
        f"and cached latents from the demo's seed 42. Validation clips (held-out blocks of the training clips). "
        f"Plateau = val PixCorr not above the mean training frame's ({baseline:.3f}).",
        "",
        "| PR seed | first epoch above the mean frame (0-based) | final val PixCorr | on the plateau at the end | "
        "best val PixCorr | val PixCorr per epoch | seconds |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {seed} | {'never' if left is None else left} | {values[-1]:.3f} | "
            f"{'**yes**' if values[-1] <= baseline else 'no'} | {max(values):.3f} | "
            f"{', '.join(f'{v:.3f}' for v in values)} | {seconds:.0f} |"
            for seed, left, values, seconds in rows
        ],
        "",
        f"Seeds on the plateau after {epochs} epochs (final val PixCorr not above the mean frame's): {len(stuck)} of {len(rows)}"
        + (f" ({', '.join(map(str, stuck))})" if stuck else "")
        + f". Final val PixCorr {finals.mean():.3f} ± "
        f"{finals.std(ddof=1) if len(finals) > 1 else 0.0:.3f} (mean ± sd over seeds); mean frame {baseline:.3f}.",
        "",
        "Command: `python experiments/simulated_benchmark/pr_plateau_seeds.py --seeds "
        + " ".join(map(str, args.seeds))
        + (f" --tag {args.tag}" if args.tag else "")
        + (" -- " + " ".join(extra) if extra else "")
        + "`",
    ]
    write_block(Path(args.out), tag, lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-file", default="data/simulated_tiny.h5")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--out", default="experiments/simulated_benchmark/pr_plateau.md")
    parser.add_argument(
        "--skip-standins",
        action="store_true",
        help="use the stand-in VAE and cached latents already beside the data file as they are",
    )
    parser.add_argument(
        "--collect-only",
        action="store_true",
        help="train nothing: tabulate the finished runs of these seeds (e.g. from parallel invocations)",
    )
    parser.add_argument(
        "--tag", default="", help="suffix of the run names (keeps runs with other overrides apart)"
    )
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]

    data_file = Path(args.data_file).resolve()
    runs_dir = Path(args.runs_dir).resolve()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "WANDB_MODE": "disabled",
        "PYTHONPATH": str(REPO),
        "NEUROCLIPS_RUNS_DIR": str(runs_dir),
    }
    common = ["experiment=demo", "subj=1", f"data.file={data_file}", f"paths.data_dir={data_file.parent}"]
    if not (args.skip_standins or args.collect_only):
        cli("neuroclips.pipeline", [*common, "stages=standins,targets"], env)
    rows, baseline, recipe = [], None, None
    for seed in args.seeds:
        name = f"pr_plateau_seed{seed}" + (f"_{args.tag}" if args.tag else "")
        run_dir = runs_dir / name / "subj1" / "pr"
        if args.collect_only:
            if not (run_dir / "summary.json").exists():
                print(f"seed {seed}: no finished run in {run_dir}, left out", flush=True)
                continue
            seconds = float(json.loads((run_dir / "summary.json").read_text()).get("wall_s", float("nan")))
        else:
            seconds = cli(
                "neuroclips.train",
                [
                    "stage=pr",
                    *common,
                    f"name={name}",
                    f"seed={seed}",
                    "logger=csv",
                    "trainer.enable_progress_bar=false",
                    "resume=never",
                    *extra,
                ],
                env,
            )
        config = json.loads((run_dir / "summary.json").read_text())["config"]
        if baseline is None:
            baseline = mean_frame_val_pixcorr(data_file, config["data"])
            recipe = {  # what the run used (older runs predate train.pr.shuffle / temporal_window)
                "batch_size": config["datamodule"]["batch_size"],
                "max_epochs": config["stage"]["max_epochs"],
                "max_lr": config["system"]["optimizer"]["lr"],
                "shuffle": config["datamodule"]["shuffle_train"],
                "temporal_window": config["system"]["temporal_window"],
            }
        values = val_pixcorr_per_epoch(run_dir)
        rows.append((seed, first_epoch_above(values, baseline), values, seconds))
        print(
            f"seed {seed}: val PixCorr per epoch {[round(v, 3) for v in values]} ({seconds:.0f} s)",
            flush=True,
        )

        write_table(rows, baseline, recipe, args, extra)
    print(Path(args.out).read_text())


if __name__ == "__main__":
    main()
