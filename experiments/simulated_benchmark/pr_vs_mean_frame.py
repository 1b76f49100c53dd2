"""Simulated benchmark for the Perceptual Reconstructor: are the blurry frames better than the mean training frame?

Runs, through the real CLI at scale=tiny on a simulated data file:
  1. stage=standins  (fits the tiny VAE stand-in beside the data file, or re-uses it);
  2. stage=pr        (trains the PR; best checkpoint on val/pixcorr);
  3. stage=blurry    with datamodule.predict_split=val (6 blurry frames per validation clip);
then scores the validation clips against the ground truth with neuroclips.metrics (SSIM rgb255 and gray_gauss,
PixCorr) for: the PR's blurry frames, the mean training frame (pixel-wise mean over every training frame; the
baseline), and the stand-in VAE's own reconstruction of the truth (the ceiling the PR can reach through that VAE).
Writes a Markdown table.

Usage (from the repo root):
  python experiments/simulated_benchmark/pr_vs_mean_frame.py --data-file data/simulated_tiny.h5 \
      --runs-dir runs --epochs 4 --out experiments/simulated_benchmark/pr_results.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]


def cli(args: list[str], env: dict) -> float:
    start = time.time()
    command = [sys.executable, "-m", "neuroclips.train", *args]
    print("$", " ".join(command[1:]), flush=True)
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"command failed: {' '.join(args)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return time.time() - start


def mean_and_sem(values: np.ndarray) -> str:
    return f"{values.mean():.3f} ± {values.std(ddof=1) / np.sqrt(len(values)):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-file", default="data/simulated_tiny.h5")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--name", default="pr_benchmark")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--latent-source", choices=["cached", "online"], default="online")
    parser.add_argument("--temporal-window", default="batch")
    parser.add_argument("--out", default="experiments/simulated_benchmark/pr_results.md")
    args = parser.parse_args()

    from neuroclips.metrics.mean_frame import mean_training_frame, validation_and_training_rows
    from neuroclips.metrics.pixcorr import pixcorr
    from neuroclips.metrics.ssim import ssim
    from neuroclips.models.frozen_vae import load_vae_latent_encoder
    from neuroclips.outputs import OutputStore

    data_file = Path(args.data_file).resolve()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "WANDB_MODE": "disabled",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO),
    }
    common = [
        f"data.file={data_file}",
        f"paths.data_dir={data_file.parent}",
        f"paths.runs_dir={args.runs_dir}",
        f"name={args.name}",
        "scale=tiny",
        "trainer.enable_progress_bar=false",
    ]
    latents = (
        [] if args.latent_source == "cached" else ["system.latent_source=online", "datamodule.targets=[]"]
    )
    window = [f"system.temporal_window={args.temporal_window}"]
    timings = {"standins": cli(["stage=standins", *common], env)}
    if args.latent_source == "cached":
        timings["targets"] = cli(
            ["stage=targets", *common, "~task.encoders.clip_tokens", "~task.encoders.caption_emb"], env
        )
    timings["pr"] = cli(["stage=pr", *common, f"stage.max_epochs={args.epochs}", *latents, *window], env)
    timings["blurry"] = cli(["stage=blurry", *common, "datamodule.predict_split=val", *window], env)

    run_root = Path(args.runs_dir).resolve() / args.name / "subj1"
    pr_summary = json.loads((run_root / "pr" / "summary.json").read_text())
    config = pr_summary["config"]
    with h5py.File(data_file, "r") as f:
        frames = f["stimuli/train/frames"]
        n_train = frames.shape[0]
        val, train = validation_and_training_rows(n_train, config["data"])
        truth = frames[val]
        clip_index = f["stimuli/train/clip_index"][val]
        mean_frame = mean_training_frame(frames, train)
    truth = torch.from_numpy(truth.reshape(-1, *truth.shape[2:]))
    store = OutputStore(run_root / "outputs")
    blurry = torch.from_numpy(
        np.stack([store.load("blurry", int(c)) for c in clip_index]).reshape(truth.shape)
    )
    baseline = mean_frame.expand_as(truth).contiguous()
    vae_cfg = config["scale"]["pr"]["vae_encoder"]
    vae = load_vae_latent_encoder(**{k: v for k, v in vae_cfg.items() if k != "_target_"})
    with torch.no_grad():
        recon = torch.cat(
            [vae.decode(vae.encode(truth[i : i + 60].float() / 255)) for i in range(0, len(truth), 60)]
        )
    recon = (recon * 255).round().to(torch.uint8)

    rows = []
    for label, pred in [
        ("PR blurry frames (ours)", blurry),
        ("mean training frame (baseline)", baseline),
        ("stand-in VAE reconstruction of the truth (ceiling)", recon),
    ]:
        rows.append(
            (
                label,
                mean_and_sem(ssim(pred, truth, "rgb255").numpy()),
                mean_and_sem(ssim(pred, truth, "gray_gauss").numpy()),
                mean_and_sem(pixcorr(pred, truth).numpy()),
            )
        )
    standin = json.loads((Path(vae_cfg["weights"]) / "standin.json").read_text())["fit"]
    metrics = pr_summary["metrics"]
    lines = [
        "# PR vs the mean training frame (simulated cc2017, scale=tiny)",
        "",
        f"Validation clips: {len(clip_index)} ({len(truth)} frames, 64×64), held out of training by the datamodule "
        f"(val_fraction {config['data']['val_fraction']}, blocks of {config['data']['val_block']}). Subject 1 "
        f"({config['subj']['voxels']} voxels). Mean ± standard error over frames.",
        "",
        "| prediction | SSIM rgb255 | SSIM gray_gauss | PixCorr |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
        "",
        "## How it was made",
        f"* Command: `python experiments/simulated_benchmark/pr_vs_mean_frame.py --data-file {args.data_file} "
        f"--epochs {args.epochs} --latent-source {args.latent_source} --temporal-window {args.temporal_window}`",
        f"* PR: {args.epochs} epochs, batch {config['datamodule']['batch_size']} clips, unshuffled, temporal window "
        f"`{args.temporal_window}`, latents `{args.latent_source}`, objective `{config['system']['objective']}`, "
        f"lr {config['system']['optimizer']['lr']} OneCycle; best val/pixcorr during training "
        f"{metrics.get('best/val/pixcorr', float('nan')):.3f} (epoch-end val/ssim {metrics.get('val/ssim', float('nan')):.3f}).",
        f"* Stand-in VAE: {standin['steps']} steps in {standin['seconds']} s, reconstruction MAE {standin['recon_mae']:.3f}, "
        f"scaling factor {standin['scaling_factor']:.3f}.",
        "* Wall time (s, 2 shared CPU cores): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()) + ".",
        "* Metrics: `neuroclips.metrics.ssim` (rgb255 = skimage RGB uint8, 7×7 uniform window; gray_gauss = gray,"
        " Gaussian σ 1.5) and `neuroclips.metrics.pixcorr` (per-frame Pearson after a resize to 425).",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
