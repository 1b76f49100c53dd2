"""SR (stage ``sr``) versus a closed-form ridge regression from voxels to the same CLIP target tokens.

Both are measured the same way: forward/backward top-1 retrieval among chunks of K clips on the validation split
(and on the test split, which neither method selects on). The ridge's lambda is picked on validation. The SR's
contrastive temperatures (the reference values times a factor) are picked on validation with the first seed, and
its epoch by the stage's best checkpoint (val/top1_fwd). The SR runs through the real CLI at scale=tiny.

    python experiments/simulated_benchmark/sr_vs_ridge.py [--n-train 600 --n-test 60] [--epochs N] [--seeds 0 1 2]
        [--tau-factors 1 4 12] [--work /tmp/sr_bench]

``--n-train/--n-test`` simulate a longer recording of the same simulated brain (the default is the embedded file's
600/60 clips); each size writes its own generated block into the output file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from generated_block import write_block  # noqa: E402  (this folder's helper; scripts run from here)

from neuroclips.data.datamodule import CC2017DataModule  # noqa: E402
from neuroclips.data.simulate import config_for, simulate  # noqa: E402
from neuroclips.models.semantic import RidgeAdapters, SemanticBackbone  # noqa: E402
from neuroclips.systems.semantic import retrieval_top1  # noqa: E402


def cli(args: list[str], work: Path, defaults: tuple[str, ...] = ("resume=never",)) -> float:
    """Run one tiny stage through the real CLI with runs and data under ``work``; seconds it took."""
    env = {
        **os.environ,
        "NEUROCLIPS_RUNS_DIR": str(work / "runs"),
        "NEUROCLIPS_DATA_DIR": str(work / "data"),
        "HF_HUB_OFFLINE": "1",
        "WANDB_MODE": "disabled",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO),
    }
    cmd = [
        sys.executable,
        "-m",
        "neuroclips.train",
        "scale=tiny",
        *defaults,
        "trainer.enable_progress_bar=false",
        *args,
    ]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{proc.stderr[-3000:]}")
    return time.time() - t0


def collect(ds, epochs: tuple[int, ...] = (0,)) -> tuple[torch.Tensor, torch.Tensor]:
    """Voxels and flattened target tokens of every item (train: one pass per epoch parity = both repetitions)."""
    xs, ys = [], []
    for e in epochs:
        ds.set_epoch(e)
        for i in range(len(ds)):
            item = ds[i]
            xs.append(item["fmri"])
            ys.append(item["targets"]["clip_tokens"].flatten())
    return torch.stack(xs).double(), torch.stack(ys).double()


def ridge_fit(x: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
    """Dual-form ridge (V >> N): W = X^T (X X^T + lam I)^-1 Y."""
    gram = x @ x.T
    return x.T @ torch.linalg.solve(gram + lam * torch.eye(len(x), dtype=x.dtype), y)


def top1(pred: torch.Tensor, target: torch.Tensor, k: int) -> tuple[float, float]:
    return retrieval_top1(F.normalize(pred.float(), dim=-1), F.normalize(target.float(), dim=-1), k)


def ridge_baseline(dm: CC2017DataModule, k: int) -> dict:
    x_tr, y_tr = collect(dm.dataset("train"), epochs=(0, 1))
    x_va, y_va = collect(dm.dataset("val"))
    x_te, y_te = collect(dm.dataset("test"))
    mean, std = x_tr.mean(0), x_tr.std(0).clamp(min=1e-6)
    z = lambda x: (x - mean) / std  # noqa: E731
    y_mean = y_tr.mean(0)
    scores = {}
    for lam in np.logspace(1, 7, 13):
        w = ridge_fit(z(x_tr), y_tr - y_mean, float(lam))
        scores[float(lam)] = (top1(z(x_va) @ w + y_mean, y_va, k), w)
    best = max(scores, key=lambda lam: sum(scores[lam][0]))
    (val_f, val_b), w = scores[best]
    te_f, te_b = top1(z(x_te) @ w + y_mean, y_te, k)
    return {
        "lambda": best,
        "val": (val_f, val_b),
        "test": (te_f, te_b),
        "val_by_lambda": {f"{lam:.0e}": s for lam, (s, _) in scores.items()},
    }


def sr_eval(ckpt_path: Path, dm: CC2017DataModule, k: int) -> dict:
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    sr = ckpt["neuroclips"]["config"]["scale"]["sr"]
    ridge = RidgeAdapters(dm.voxels, sr["hidden"])
    backbone = SemanticBackbone(
        hidden=sr["hidden"],
        n_blocks=sr["n_blocks"],
        dropout=sr["dropout"],
        clip_tokens=sr["clip_tokens"],
        clip_dim=sr["clip_dim"],
    )
    state = ckpt["state_dict"]
    ridge.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("ridge.")})
    backbone.load_state_dict({k[9:]: v for k, v in state.items() if k.startswith("backbone.")})
    ridge.eval(), backbone.eval()
    out = {}
    for split in ("val", "test"):
        x, y = collect(dm.dataset(split))
        with torch.no_grad():
            _, clip_voxels = backbone(ridge(x.float()))
        out[split] = top1(clip_voxels.flatten(1), y, k)
    out["epochs"] = int(ckpt["neuroclips"]["config"]["trainer"]["max_epochs"])
    return out


# the reference temperatures, read where the paper recipe defines them (method.md §3.2)
REFERENCE_TAU = {
    k: float(v) for k, v in OmegaConf.load(REPO / "conf" / "train" / "paper.yaml").sr.tau.items()
}


def tau_overrides(factor: float) -> list[str]:
    return [f"train.sr.tau.{k}={v * factor:.6g}" for k, v in REFERENCE_TAU.items()]


def run_sr(seed: int, factor: float, dm: CC2017DataModule, k: int, work: Path, extra: list[str]) -> dict:
    name = f"bench_seed{seed}_tau{factor:g}"
    cli(["stage=sr", f"seed={seed}", f"name={name}", *tau_overrides(factor), *extra], work)
    return sr_eval(work / "runs" / name / "subj1" / "sr" / "checkpoints" / "best.ckpt", dm, k)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument(
        "--work", type=Path, default=Path("/tmp/sr_bench"), help="scratch root (one folder per size)"
    )
    ap.add_argument(
        "--n-train", type=int, default=600, help="simulated training clips (10 %% of them are val)"
    )
    ap.add_argument("--n-test", type=int, default=60)
    ap.add_argument("--epochs", type=int, default=None, help="SR epochs (default: conf/train/tiny.yaml)")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("sr_results.md"))
    ap.add_argument("--k", type=int, default=30)
    ap.add_argument("--tau-factors", type=float, nargs="+", default=[1.0, 4.0, 12.0])
    args = ap.parse_args()
    t0 = time.time()
    tag = f"n{args.n_train}"
    work = args.work / tag
    data_file = work / "data" / "simulated_tiny.h5"
    if not data_file.exists():  # same brain and movie generator as the embedded file, n_train/n_test clips
        data_file.parent.mkdir(parents=True, exist_ok=True)
        simulate(data_file, config_for("tiny", n_train=args.n_train, n_test=args.n_test, subjects=(1,)))
    cli(["stage=targets", "task.encoders.vae_latents=null"], work)  # SR targets into the file (resumable)
    extra = [] if args.epochs is None else [f"train.sr.epochs={args.epochs}"]
    dm = CC2017DataModule(
        file=str(data_file), subj=1, voxels=13447, targets=["clip_tokens"], auto_create=False
    )
    sizes = {s: len(dm.dataset(s)) for s in ("train", "val", "test")}
    ridge = ridge_baseline(dm, args.k)
    print("ridge", json.dumps({k: v for k, v in ridge.items() if k != "val_by_lambda"}))
    by_factor = {}
    for factor in args.tau_factors:  # temperature selection on validation, first seed
        by_factor[factor] = run_sr(args.seeds[0], factor, dm, args.k, work, extra)
        print("sr tau x", factor, by_factor[factor])
    factor = max(by_factor, key=lambda f: sum(by_factor[f]["val"]))
    srs = [by_factor[factor]]
    for seed in args.seeds[1:]:
        srs.append(run_sr(seed, factor, dm, args.k, work, extra))
        print("sr seed", seed, srs[-1])
    write_table(
        args.out,
        tag,
        ridge,
        srs,
        args.seeds,
        sizes,
        args.k,
        time.time() - t0,
        factor,
        by_factor,
        srs[0]["epochs"],
    )


def write_table(
    out: Path,
    tag: str,
    ridge: dict,
    srs: list[dict],
    seeds: list[int],
    sizes: dict,
    k: int,
    wall: float,
    factor: float,
    by_factor: dict,
    epochs: int,
) -> None:
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    mean = lambda split, i: float(np.mean([r[split][i] for r in srs]))  # noqa: E731
    std = lambda split, i: float(np.std([r[split][i] for r in srs]))  # noqa: E731
    lines = [
        f"# SR vs closed-form ridge on the simulated brain (scale=tiny, {sizes['train']} training clips)",
        "",
        f"Produced by `python experiments/simulated_benchmark/sr_vs_ridge.py --n-train {sizes['train'] + sizes['val']} "
        f"--n-test {sizes['test']}` (CPU, {wall:.0f} s in all; SR {epochs} epochs). Data: `neuroclips.data.simulate` "
        "scale=tiny, subject 1 (13447 voxels), "
        f"train/val/test = {sizes['train']}/{sizes['val']}/{sizes['test']} clips; targets = tiny random OpenCLIP "
        "patch tokens (16 x 32) of the keyframe. Retrieval: top-1 among consecutive chunks of "
        f"K = {k} clips (chance {100 / k:.1f} %), forward = fMRI -> image, backward = image -> fMRI.",
        "",
        "| method | selection on val | val top-1 fwd | val top-1 bwd | test top-1 fwd | test top-1 bwd |",
        "|---|---|---|---|---|---|",
        f"| ridge (closed form, z-scored voxels, both repetitions) | lambda = {ridge['lambda']:.0e} "
        f"| {pct(ridge['val'][0])} | {pct(ridge['val'][1])} | {pct(ridge['test'][0])} | {pct(ridge['test'][1])} |",
        f"| SR `stage=sr` (mean ± sd over seeds {seeds}) | tau = reference x {factor:g}, best epoch "
        f"| {pct(mean('val', 0))} ± {pct(std('val', 0))} | {pct(mean('val', 1))} ± {pct(std('val', 1))} "
        f"| {pct(mean('test', 0))} ± {pct(std('test', 0))} | {pct(mean('test', 1))} ± {pct(std('test', 1))} |",
    ]
    for seed, r in zip(seeds, srs):
        lines.append(
            f"| SR seed {seed} | tau x {factor:g}, best epoch | {pct(r['val'][0])} | {pct(r['val'][1])} "
            f"| {pct(r['test'][0])} | {pct(r['test'][1])} |"
        )
    lines += [
        "",
        "Ridge validation top-1 (fwd, bwd) per lambda: "
        + ", ".join(f"{lam}: ({pct(f)}, {pct(b)})" for lam, (f, b) in ridge["val_by_lambda"].items()),
        "",
        f"SR validation top-1 (fwd, bwd) per temperature factor, seed {seeds[0]} (x 1 = the reference "
        "temperatures, BiMixCo 0.006): "
        + ", ".join(f"x {f:g}: ({pct(r['val'][0])}, {pct(r['val'][1])})" for f, r in by_factor.items()),
        "",
    ]
    write_block(out, tag, lines)
    print(out.read_text())


if __name__ == "__main__":
    main()
