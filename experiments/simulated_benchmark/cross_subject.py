"""Cross-subject learning on the simulated brain: does a backbone shared over subjects help a new subject?

Four ways of getting subject 1's Semantic Reconstructor (stage ``sr``, scale=tiny, real CLI), three seeds each:

(a) subject 1 alone on ``--fraction`` (12.5 %) of its training clips (the first ones in movie order);
(b) pretrained on subjects 2 + 3 (``subj=[2,3]``, all their clips), then adapted to subject 1 on the same 12.5 %
    (``init.from_run=`` the 2+3 run, ``adapt.adapter_epochs``: only the new adapter trains first, then everything);
(c) subject 1 alone on all its training clips;
(d) ``subj=all`` on all clips of the three subjects.

Every model is scored the same way, for subject 1 only: its best checkpoint (validation monitor; for (d) the mean
over subjects) is loaded for subject 1 (a multi-subject checkpoint gives its subject-1 adapter) and forward/backward
top-1 retrieval among chunks of K clips is computed on subject 1's validation and test clips. Baseline rows: the
closed-form ridge on the same 12.5 % and on all clips (lambda picked on validation).

    python experiments/simulated_benchmark/cross_subject.py [--seeds 0 1 2] [--epochs 60] [--small-epochs 150]
        [--adapter-epochs 30] [--work /tmp/xsubj_bench]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from neuroclips.checkpoints import load_into, read_checkpoint  # noqa: E402
from neuroclips.data.datamodule import CC2017DataModule  # noqa: E402
from neuroclips.data.schema import SUBJECT_VOXELS  # noqa: E402
from neuroclips.models.semantic import RidgeAdapters, SemanticBackbone  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sr_vs_ridge import cli as run_stage  # noqa: E402  (the same CLI runner, voxel/target collection, ridge, top-1)
from sr_vs_ridge import collect, ridge_fit, top1  # noqa: E402

TAG = ("<!-- generated table: start cross_subject -->", "<!-- generated table: end cross_subject -->")


def cli(args: list[str], work: Path) -> float:
    return run_stage(args, work, defaults=("logger=none",))


def subject1_scores(ckpt_path: Path, splits: dict, k: int) -> dict:
    """Subject 1's val/test retrieval of a (one- or multi-subject) sr checkpoint."""
    sr = read_checkpoint(ckpt_path)["neuroclips"]["config"]["scale"]["sr"]
    ridge = load_into(
        RidgeAdapters(SUBJECT_VOXELS[1], sr["hidden"]), str(ckpt_path), "sr", 1, prefix="ridge."
    )
    backbone = load_into(
        SemanticBackbone(
            hidden=sr["hidden"],
            n_blocks=sr["n_blocks"],
            dropout=sr["dropout"],
            clip_tokens=sr["clip_tokens"],
            clip_dim=sr["clip_dim"],
        ),
        str(ckpt_path),
        "sr",
        1,
        prefix="backbone.",
    )
    ridge.eval(), backbone.eval()
    out = {}
    with torch.no_grad():
        for split, (x, y) in splits.items():
            out[split] = top1(backbone(ridge(x))[1].flatten(1), y, k)
    return out


def ridge_baseline(train: tuple, splits: dict, k: int) -> dict:
    """Closed-form dual ridge voxels -> centred target tokens (voxels z-scored with training statistics, both
    repetitions), lambda picked on val (as sr_vs_ridge.py)."""
    x, y = train
    mu, sd = x.mean(0), x.std(0).clamp(min=1e-6)
    z = lambda a: (a - mu) / sd  # noqa: E731
    y_mean = y.mean(0)
    best = None
    for lam in np.logspace(1, 7, 13):
        w = ridge_fit(z(x), y - y_mean, float(lam))
        scores = {s: top1(z(xs) @ w + y_mean, ys, k) for s, (xs, ys) in splits.items()}
        if best is None or sum(scores["val"]) > sum(best["val"]):
            best = {**scores, "lambda": float(lam)}
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--epochs", type=int, default=60, help="epochs of the runs on all clips ((b) pretraining, c, d)"
    )
    p.add_argument(
        "--small-epochs", type=int, default=150, help="epochs of the 12.5 %% runs ((a), (b) adaptation)"
    )
    p.add_argument("--adapter-epochs", type=int, default=30, help="(b): epochs of the adapter-only phase")
    p.add_argument("--fraction", type=float, default=0.125)
    p.add_argument("--k", type=int, default=30)
    p.add_argument(
        "--work",
        type=Path,
        nargs="+",
        default=[Path("/tmp/xsubj_bench")],
        help="work folder (data, runs); with --table-only, several: seeds run in parallel elsewhere",
    )
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("cross_subject_results.md"))
    p.add_argument(
        "--table-only",
        action="store_true",
        help="score the finished runs found in the --work folders and write the table (trains nothing)",
    )
    args = p.parse_args()
    t0 = time.time()
    work = args.work[0]
    if not args.table_only:
        cli(
            ["stage=targets", "task.encoders.vae_latents=null"], work
        )  # writes the 3-subject file, caches targets
    data_file = work / "data" / "simulated_tiny.h5"
    full = [f"train.sr.epochs={args.epochs}"]
    small = [f"train.sr.epochs={args.small_epochs}", f"data.train_fraction={args.fraction}"]
    dm = CC2017DataModule(file=str(data_file), subj=1, voxels=SUBJECT_VOXELS[1], targets=["clip_tokens"])
    dm_small = CC2017DataModule(
        file=str(data_file),
        subj=1,
        voxels=SUBJECT_VOXELS[1],
        targets=["clip_tokens"],
        train_fraction=args.fraction,
    )
    splits = {s: collect(dm.dataset(s)) for s in ("val", "test")}
    sizes = {
        "train": len(dm.dataset("train")),
        "train_small": len(dm_small.dataset("train")),
        "val": len(splits["val"][0]),
        "test": len(splits["test"][0]),
    }
    baselines = {
        "ridge 12.5 %": ridge_baseline(collect(dm_small.dataset("train"), (0, 1)), splits, args.k),
        "ridge all": ridge_baseline(collect(dm.dataset("train"), (0, 1)), splits, args.k),
    }
    print(json.dumps(baselines), flush=True)
    if args.table_only:
        results, walls = score_runs(args, splits)
        save(args, baselines, results, sizes, walls, sum(walls.values()))
        return
    results: dict[str, list[dict]] = {c: [] for c in "abcd"}
    walls: dict[str, float] = {c: 0.0 for c in "abcd"}
    for seed in args.seeds:
        runs = work / "runs"
        walls["a"] += cli(["stage=sr", "subj=1", f"seed={seed}", f"name=a_s{seed}", *small], work)
        walls["b"] += cli(["stage=sr", "subj=[2,3]", f"seed={seed}", f"name=b_s{seed}", *full], work)
        walls["b"] += cli(
            [
                "stage=sr",
                "subj=1",
                f"seed={seed}",
                f"name=b_s{seed}",
                *small,
                f"init.from_run={runs / f'b_s{seed}' / 'subj2_3' / 'sr'}",
                f"adapt.adapter_epochs={args.adapter_epochs}",
            ],
            work,
        )
        walls["c"] += cli(["stage=sr", "subj=1", f"seed={seed}", f"name=c_s{seed}", *full], work)
        walls["d"] += cli(["stage=sr", "subj=all", f"seed={seed}", f"name=d_s{seed}", *full], work)
        for c, folder in FOLDERS.items():
            results[c].append(
                subject1_scores(
                    runs / f"{c}_s{seed}" / folder / "sr" / "checkpoints" / "best.ckpt", splits, args.k
                )
            )
        print(seed, json.dumps({c: r[-1] for c, r in results.items()}), flush=True)
    save(args, baselines, results, sizes, walls, time.time() - t0)


FOLDERS = {"a": "subj1", "b": "subj1", "c": "subj1", "d": "subj1_2_3"}


def score_runs(args, splits: dict) -> tuple[dict, dict]:
    """--table-only: subject 1's scores of every seed's finished runs, and the runs' training wall times."""
    results: dict[str, list[dict]] = {c: [] for c in "abcd"}
    walls = {c: 0.0 for c in "abcd"}
    for seed in args.seeds:
        found = [
            w / "runs"
            for w in args.work
            if (w / "runs" / f"d_s{seed}" / "subj1_2_3" / "sr" / "summary.json").exists()
        ]
        if not found:
            raise SystemExit(f"seed {seed}: no finished runs in {args.work}")
        runs = found[0]
        for c, folder in FOLDERS.items():
            results[c].append(
                subject1_scores(
                    runs / f"{c}_s{seed}" / folder / "sr" / "checkpoints" / "best.ckpt", splits, args.k
                )
            )
        for c, folder in (*FOLDERS.items(), ("b", "subj2_3")):
            walls[c] += json.loads((runs / f"{c}_s{seed}" / folder / "sr" / "summary.json").read_text())[
                "wall_s"
            ]
    return results, walls


def save(args, baselines: dict, results: dict, sizes: dict, walls: dict, wall: float) -> None:
    args.out.with_suffix(".json").write_text(
        json.dumps(
            {
                "baselines": baselines,
                "results": results,
                "sizes": sizes,
                "walls": walls,
                "wall_s": wall,
                "args": vars(args) | {"work": [str(w) for w in args.work], "out": str(args.out)},
            },
            indent=1,
        )
    )
    write_table(args, baselines, results, sizes, walls, wall)


LABELS = {
    "a": "(a) subject 1 alone, 12.5 % of its clips",
    "b": "(b) pretrained on subjects 2 + 3, adapted on subject 1's 12.5 %",
    "c": "(c) subject 1 alone, all its clips",
    "d": "(d) `subj=all`, all clips of the 3 subjects",
}


def write_table(args, baselines: dict, results: dict, sizes: dict, walls: dict, wall: float) -> None:
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731

    def ms(rs, split, i):
        return f"{pct(np.mean([r[split][i] for r in rs]))} ± {pct(np.std([r[split][i] for r in rs]))}"

    lines = [
        "# Cross-subject SR on the simulated brain: subject 1's retrieval (scale=tiny)",
        "",
        f"Produced by `python experiments/simulated_benchmark/cross_subject.py --seeds {' '.join(map(str, args.seeds))} "
        f"--epochs {args.epochs} --small-epochs {args.small_epochs} --adapter-epochs {args.adapter_epochs}` "
        f"(CPU, {wall:.0f} s of training). Data: `neuroclips.data.simulate` scale=tiny, three subjects (13447, 14828, "
        f"9114 voxels; same movie, own voxel mixing and noise); subject 1 train/val/test = {sizes['train']}/"
        f"{sizes['val']}/{sizes['test']} clips, 12.5 % = the first {sizes['train_small']} training clips. Top-1 "
        f"among chunks of K = {args.k} clips (chance {100 / args.k:.1f} %), forward = fMRI -> image. Mean ± sd over "
        f"seeds {args.seeds}; each model at its best validation epoch ((d): best mean over the 3 subjects). "
        f"Runs on all clips: {args.epochs} epochs; runs on 12.5 %: {args.small_epochs} epochs ((b): the first "
        f"{args.adapter_epochs} train only subject 1's new adapter, the shared backbone frozen).",
        "",
        "| model of subject 1 | val top-1 fwd | val top-1 bwd | test top-1 fwd | test top-1 bwd | train wall (s, all seeds) |",
        "|---|---|---|---|---|---|",
    ]
    for name, b in baselines.items():
        lines.append(
            f"| closed-form {name} (lambda {b['lambda']:.0e}, picked on val) | {pct(b['val'][0])} | "
            f"{pct(b['val'][1])} | {pct(b['test'][0])} | {pct(b['test'][1])} | |"
        )
    for c in "abcd":
        rs = results[c]
        lines.append(
            f"| {LABELS[c]} | {ms(rs, 'val', 0)} | {ms(rs, 'val', 1)} | {ms(rs, 'test', 0)} | "
            f"{ms(rs, 'test', 1)} | {walls[c]:.0f} |"
        )
    lines += [
        "",
        "Per seed (val fwd, test fwd): "
        + "; ".join(
            f"{c}: " + ", ".join(f"({pct(r['val'][0])}, {pct(r['test'][0])})" for r in results[c])
            for c in "abcd"
        ),
        "",
    ]
    block = "\n".join([TAG[0], *lines, TAG[1]])
    text = args.out.read_text() if args.out.exists() else ""
    if TAG[0] in text:
        text = text[: text.index(TAG[0])] + block + text[text.index(TAG[1]) + len(TAG[1]) :]
    else:
        text = block + "\n" + text
    args.out.write_text(text)
    print(block)


if __name__ == "__main__":
    main()
