"""Cross-subject learning for the Perceptual Reconstructor: subject 1's blurry-video PixCorr, four ways, seeds.

The PR half of the cross-subject table (``cross_subject.py`` is the SR half); the same four ways, through the real
CLI at scale=tiny:

(a) ``stage=pr subj=1`` on ``--fraction`` (12.5 %) of its training clips (the first ones in movie order);
(b) ``stage=pr subj=[2,3]`` on all their clips, then ``stage=pr subj=1`` on the same 12.5 % with
    ``init.from_run=`` that run and ``adapt.adapter_epochs`` (only subject 1's new ridge and Inception Extension
    train first, then everything);
(c) ``stage=pr subj=1`` on all its training clips;
(d) ``stage=pr subj=all`` on all clips of the three subjects.

Every model is scored the same way, for subject 1 only: ``stage=blurry subj=1 pr_ckpt=<best.ckpt>`` (a multi-subject
checkpoint gives its subject-1 slice) writes the blurry frames of subject 1's validation and test clips, and PixCorr
(``neuroclips.metrics.pixcorr``, MindEye's resize-to-425 Pearson, per frame) is averaged over the frames. Baseline:
the mean training frame. Each PR run keeps its best validation epoch (``val/pixcorr``; (d): the mean over subjects).

    python experiments/simulated_benchmark/cross_subject_pr.py [--seeds 0 1 2] [--epochs 6] [--small-epochs 12]
        [--adapter-epochs 3] [--work /work/xsubj_pr]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cross_subject import LABELS  # noqa: E402  (the same four ways as the SR table)
from sr_vs_ridge import cli as run_stage  # noqa: E402

from neuroclips.metrics.mean_frame import mean_training_frame, validation_and_training_rows  # noqa: E402
from neuroclips.metrics.pixcorr import pixcorr  # noqa: E402
from neuroclips.outputs import OutputStore  # noqa: E402

TAG = ("<!-- generated table: start cross_subject_pr -->", "<!-- generated table: end cross_subject_pr -->")
FOLDERS = {"a": "subj1", "b": "subj1", "c": "subj1", "d": "subj1_2_3"}


def cli(args: list[str], work: Path) -> float:
    return run_stage(args, work, defaults=("logger=none",))


def ground_truth(data_file: Path, config: dict) -> dict[str, tuple[np.ndarray, torch.Tensor]]:
    """Subject 1's validation and test clips: their clip indices and frames (N*6, 3, H, W) uint8, and the mean
    training frame (validation excluded) as a baseline prediction of the same shape."""
    with h5py.File(data_file, "r") as f:
        frames = f["stimuli/train/frames"]
        val, train = validation_and_training_rows(frames.shape[0], config["data"])
        mean = mean_training_frame(frames, train)
        out = {
            "val": (f["stimuli/train/clip_index"][val], frames[val]),
            "test": (f["stimuli/test/clip_index"][:], f["stimuli/test/frames"][:]),
        }
    truth = {s: (idx, torch.from_numpy(x.reshape(-1, *x.shape[2:]))) for s, (idx, x) in out.items()}
    truth["mean_frame"] = mean
    return truth


def score(work: Path, ckpt: Path, tag: str, truth: dict) -> dict[str, float]:
    """Subject 1's mean PixCorr on val and test of one PR checkpoint, through stage=blurry."""
    out = {}
    for split in ("val", "test"):
        name = f"score_{tag}_{split}"
        cli(
            [
                "stage=blurry",
                "subj=1",
                f"pr_ckpt={ckpt}",
                f"datamodule.predict_split={split}",
                f"name={name}",
            ],
            work,
        )
        store = OutputStore(work / "runs" / name / "subj1" / "outputs")
        idx, gt = truth[split]
        pred = torch.from_numpy(np.stack([store.load("blurry", int(c)) for c in idx]).reshape(gt.shape))
        out[split] = float(np.nanmean(pixcorr(pred, gt).numpy()))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--epochs", type=int, default=6, help="epochs of the runs on all clips ((b) pretraining, c, d)"
    )
    p.add_argument(
        "--small-epochs", type=int, default=12, help="epochs of the 12.5 %% runs ((a), (b) adaptation)"
    )
    p.add_argument("--adapter-epochs", type=int, default=3, help="(b): epochs of the adapter-only phase")
    p.add_argument("--fraction", type=float, default=0.125)
    p.add_argument("--ways", default="abcd", help="which of the four ways to run (default all)")
    p.add_argument("--work", type=Path, default=Path("/work/xsubj_pr"))
    p.add_argument("--skip-setup", action="store_true", help="the stand-ins and cached latents exist already")
    p.add_argument(
        "--table-seeds", type=int, nargs="+", default=None, help="seeds in the table (default --seeds)"
    )
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("cross_subject_results.md"))
    p.add_argument(
        "--results",
        type=Path,
        default=None,
        help="the per-run result files (default WORK/results); a run whose "
        "file exists is not run again, e.g. experiments/simulated_benchmark/cross_subject_pr_runs",
    )
    args = p.parse_args()
    work, runs = args.work, args.work / "runs"
    t0 = time.time()
    # --skip-setup: another invocation (a parallel seed) has them ready, and is reading the data file
    if not args.skip_setup:
        cli(["stage=standins"], work)  # the stand-in VAE beside the data file (re-used when fitted)
        cli(["stage=targets"], work)  # cached VAE latents for every subject's clips (re-used when cached)
    data_file = work / "data" / "simulated_tiny.h5"
    full = [f"train.pr.max_epochs={args.epochs}"]
    small = [f"train.pr.max_epochs={args.small_epochs}", f"data.train_fraction={args.fraction}"]
    # one file per finished run: seeds may run in parallel invocations, and a later session can add seeds to the
    # committed files (cross_subject_pr_runs/) instead of rerunning them
    results = args.results or work / "results"
    results.mkdir(parents=True, exist_ok=True)
    truth = None
    for seed in args.seeds:
        for c in args.ways:
            key = f"{c}_s{seed}"
            if (results / f"{key}.json").exists():
                continue
            wall = 0.0
            if c == "a":
                wall += cli(["stage=pr", "subj=1", f"seed={seed}", f"name={key}", *small], work)
            elif c == "b":
                wall += cli(["stage=pr", "subj=[2,3]", f"seed={seed}", f"name={key}", *full], work)
                wall += cli(
                    [
                        "stage=pr",
                        "subj=1",
                        f"seed={seed}",
                        f"name={key}",
                        *small,
                        f"init.from_run={runs / key / 'subj2_3' / 'pr'}",
                        f"adapt.adapter_epochs={args.adapter_epochs}",
                    ],
                    work,
                )
            elif c == "c":
                wall += cli(["stage=pr", "subj=1", f"seed={seed}", f"name={key}", *full], work)
            else:
                wall += cli(["stage=pr", "subj=all", f"seed={seed}", f"name={key}", *full], work)
            run = runs / key / FOLDERS[c] / "pr"
            if truth is None:
                truth = ground_truth(data_file, json.loads((run / "summary.json").read_text())["config"])
            scores = {**score(work, run / "checkpoints" / "best.ckpt", key, truth), "wall_s": wall}
            (results / f"{key}.json").write_text(json.dumps(scores, indent=1))
            print(key, json.dumps(scores), flush=True)
    done = {f.stem: json.loads(f.read_text()) for f in sorted(results.glob("*.json"))}
    if truth is None:
        run = next(runs.glob("*/subj1/pr"))
        truth = ground_truth(data_file, json.loads((run / "summary.json").read_text())["config"])
    baseline = {
        s: float(np.nanmean(pixcorr(truth["mean_frame"].expand_as(gt).contiguous(), gt).numpy()))
        for s, (_, gt) in ((s, truth[s]) for s in ("val", "test"))
    }
    write_table(args, done, baseline, time.time() - t0)


def write_table(args, done: dict, baseline: dict, wall: float) -> None:
    seeds = args.table_seeds or args.seeds

    def ms(c: str, split: str) -> str:
        v = [done[f"{c}_s{s}"][split] for s in seeds if f"{c}_s{s}" in done]
        if not v:
            return "–"
        return f"{np.mean(v):.3f} ± {np.std(v):.3f}" + (
            "" if len(v) == len(seeds) else f" ({len(v)} of {len(seeds)} seeds)"
        )

    def walls(c: str) -> str:
        return f"{sum(done[f'{c}_s{s}']['wall_s'] for s in seeds if f'{c}_s{s}' in done):.0f}"

    lines = [
        "# Cross-subject PR on the simulated brain: subject 1's blurry-video PixCorr (scale=tiny)",
        "",
        f"Produced by `python experiments/simulated_benchmark/cross_subject_pr.py --seeds "
        f"{' '.join(map(str, seeds))} --epochs {args.epochs} --small-epochs {args.small_epochs} "
        f"--adapter-epochs {args.adapter_epochs}` (CPU, one core per run, {sum(r['wall_s'] for r in done.values()):.0f} s of training and scoring in all). The same data and the same "
        f"four ways as the SR table above; PR `scale=tiny` defaults otherwise (cached stand-in VAE latents). "
        f"Runs on all clips: {args.epochs} epochs; runs on 12.5 %: {args.small_epochs} epochs ((b): the first "
        f"{args.adapter_epochs} train only subject 1's new ridge and Inception Extension). Each model at its best "
        f"validation PixCorr epoch ((d): best mean over the 3 subjects), scored for subject 1 through "
        f"`stage=blurry subj=1 pr_ckpt=...`: PixCorr averaged over every frame of subject 1's validation (60 clips) "
        f"and test (60 clips) clips. Mean ± sd over seeds {seeds}.",
        "",
        "| model of subject 1 | val PixCorr | test PixCorr | train wall (s, all seeds) |",
        "|---|---|---|---|",
        f"| mean training frame (baseline) | {baseline['val']:.3f} | {baseline['test']:.3f} | |",
        *[f"| {LABELS[c]} | {ms(c, 'val')} | {ms(c, 'test')} | {walls(c)} |" for c in "abcd"],
        "",
        "Per seed (val, test): "
        + "; ".join(
            f"{c}: "
            + ", ".join(
                f"({done[f'{c}_s{s}']['val']:.3f}, {done[f'{c}_s{s}']['test']:.3f})"
                for s in seeds
                if f"{c}_s{s}" in done
            )
            for c in "abcd"
        ),
        "",
    ]
    block = "\n".join([TAG[0], *lines, TAG[1]])
    text = args.out.read_text() if args.out.exists() else ""
    end_sr = "<!-- generated table: end cross_subject -->"
    if TAG[0] in text:
        text = text[: text.index(TAG[0])] + block + text[text.index(TAG[1]) + len(TAG[1]) :]
    elif end_sr in text:
        i = text.index(end_sr) + len(end_sr)
        text = text[:i] + "\n\n" + block + text[i:]
    else:
        text = block + "\n" + text
    args.out.write_text(text)
    print(block)


if __name__ == "__main__":
    main()
