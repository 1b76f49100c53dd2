"""Is the Perceptual Reconstructor what holds the end-to-end table back? The tiny PR against closed-form ridges.

The final videos follow their blurry videos (end_to_end.md: α off costs most; keyframe and caption barely matter), so
what the blurry videos carry of a clip bounds what the final videos can. This script puts the demo run's PR beside
what linear maps make of the same fMRI, all scored by the eval stage on the validation and the test clips:

* the mean training frame (no brain data);
* the demo run's PR (its selected checkpoint, `stage=pr`, predicted as `stage=blurry` predicts);
* the PR re-fitted in this process with one change to the demo's recipe at a time (the recipe's L1 on the cached
  latents, batches of 8 shuffled clips, one repetition an epoch, AdamW with OneCycle (warm-up 2 epochs as the
  system's; torch's final_div_factor 1e4 where the system's is 1e3), the epoch of best validation
  PixCorr kept; the soft contrastive term against the random ConvNeXt teacher is left out: the demo recipe's row
  tells what that costs);
* a closed-form ridge to the PR's own targets, the VAE latents, decoded by the same VAE (what a linear map reaches
  in the PR's target space);
* a closed-form ridge to the pixels (ridge_frames.py; no VAE at all).

Every fit uses the training clips without the validation blocks, each ridge's λ is chosen on the validation blocks.

Usage (repo root, after `make demo`):
  python experiments/simulated_benchmark/pr_vs_ridge.py [--run runs/demo/subj1] [--data-file data/simulated_tiny.h5]
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

RECIPE = {
    "epochs": 6,
    "lr": 1e-3,
    "weight_decay": 0.01,
    "batch_size": 8,
    "loss": "l1",
    "repetitions": "parity",
}
VARIANTS = {  # title -> (PerceptualNet overrides, RECIPE overrides)
    "re-fitted, the demo's recipe": ({}, {}),
    "no dropout (0.15 and 0.3)": ({"dropout": 0.0, "low_level_dropout": 0.0}, {}),
    "Inception Extension 128 wide (32)": ({"inception_hidden": 128}, {}),
    "backbone 512 wide (128)": ({"hidden": 512}, {}),
    "low-level maps of 64 channels (16)": ({"low_level_channels": 64}, {}),
    "low-level BatchNorm (GroupNorm)": ({"low_level_norm": "batch"}, {}),
    "lr 3e-3 (1e-3)": ({}, {"lr": 3e-3}),
    "12 epochs (6)": ({}, {"epochs": 12}),
    "weight decay 1 (0.01)": ({}, {"weight_decay": 1.0}),
    "MSE on the latents (L1)": ({}, {"loss": "mse"}),
    "repetitions averaged (one an epoch)": ({}, {"repetitions": "mean"}),
}
COLUMNS = {"SSIM": "ssim_rgb255", "PixCorr": "pixcorr", "video 2-way": "video_2way_strict"}


def run_system(run: Path):
    """The demo run's PR LightningModule (net with its selected weights, frozen VAE) and its config."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(run / "pr" / "config.yaml")
    system = instantiate(cfg.system)
    state = torch.load(run / "pr" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    system.load_state_dict(
        state["state_dict"], strict=False
    )  # the frozen VAE and teacher come from their files
    return system.eval(), cfg


def split_rows(data_file: Path, subject: int, data_cfg) -> dict:
    """``ridge_frames.read_rows`` with the training fMRI as float32, the test fMRI averaged over its repetitions as
    float32 (``test_x``), and the PR's cached target latents."""
    from ridge_frames import read_rows

    rows = read_rows(data_file, subject, data_cfg)
    with h5py.File(data_file, "r") as f:
        latents = f["targets/vae_latents/train"][:].astype(np.float32)
    test_x = rows["test_fmri"].astype(np.float32).mean(1)
    return {**rows, "fmri": rows["fmri"].astype(np.float32), "test_x": test_x, "latents": latents}


@torch.no_grad()
def predict(net, system, fmri: np.ndarray) -> np.ndarray:
    """Blurry videos (N, 6, 3, H, W) uint8, as stage=blurry makes them with the `clip` window."""
    net.eval()
    x = torch.from_numpy(fmri)
    videos = [system.decode_frames(net(x[i : i + 6], "clip", 0)["latents"]) for i in range(0, len(x), 6)]
    return (torch.cat(videos).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def save(videos: np.ndarray, index: np.ndarray, target: Path, source: str) -> None:
    from neuroclips.outputs import OutputStore

    store = OutputStore(target)
    for clip, video in zip(index, videos):
        store.save("blurry", int(clip), video, {"source": source})


def refit(title: str, run: str, data_file: str, scratch: str) -> float:
    """One variant: fit in this (spawned, one-thread) process, write its val and test blurry videos; seconds."""
    from ridge_frames import frame_pixcorr

    from neuroclips.losses.perceptual import latent_l1
    from neuroclips.models.perceptual import PerceptualNet

    torch.set_num_threads(1)
    net_changes, recipe_changes = VARIANTS[title]
    recipe = {**RECIPE, **recipe_changes}
    system, cfg = run_system(Path(run))
    rows = split_rows(Path(data_file), int(cfg.subj.id), cfg.data)
    kwargs = {k: v for k, v in cfg.system.net.items() if k != "_target_"}
    torch.manual_seed(int(cfg.seed))
    net = PerceptualNet(**{**kwargs, **net_changes})
    optimizer = torch.optim.AdamW(net.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    train, bs = rows["train"], recipe["batch_size"]
    steps = len(train) // bs
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, recipe["lr"], total_steps=recipe["epochs"] * steps, pct_start=2 / recipe["epochs"]
    )
    fmri, latents = torch.from_numpy(rows["fmri"]), torch.from_numpy(rows["latents"])
    val_fmri = rows["fmri"][rows["val"]].mean(1)
    val_truth = rows["frames"][rows["val"]].astype(np.float32) / 255
    order = torch.Generator().manual_seed(int(cfg.seed))
    best, start = (-2.0, None), time.time()
    for epoch in range(recipe["epochs"]):
        net.train()
        shuffled = train[torch.randperm(len(train), generator=order).numpy()]
        for step in range(steps):
            clips = shuffled[step * bs : (step + 1) * bs]
            x = fmri[clips].mean(1) if recipe["repetitions"] == "mean" else fmri[clips, epoch % 2]
            out = net(x, "clip", 0)["latents"]
            if recipe["loss"] == "l1":
                loss = latent_l1(out, latents[clips])
            else:
                loss = torch.nn.functional.mse_loss(out, latents[clips])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        score = frame_pixcorr(predict(net, system, val_fmri).astype(np.float32) / 255, val_truth)
        if score > best[0]:
            best = (score, copy.deepcopy(net.state_dict()))
    net.load_state_dict(best[1])
    folder = Path(scratch) / slug(title)
    save(predict(net, system, val_fmri), rows["index"][rows["val"]], folder / "val", title)
    save(predict(net, system, rows["test_x"]), rows["test_index"], folder / "test", title)
    return time.time() - start


def slug(title: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in title)[:40]


def linear_rows(system, rows: dict, scratch: Path) -> dict[str, float]:
    """Mean frame, the demo PR, the latent ridge and the pixel ridge: val and test stores; their λ."""
    from ridge_frames import dual_ridge, frame_pixcorr, ridge_blurry

    val, train = rows["val"], rows["train"]
    mean = rows["frames"][train].astype(np.float32).mean(0)
    n_val, n_test = len(val), len(rows["test_index"])
    for split, n, index in (("val", n_val, rows["index"][val]), ("test", n_test, rows["test_index"])):
        videos = np.repeat(mean.round().astype(np.uint8)[None], n, axis=0)
        save(videos, index, scratch / "mean_frame" / split, "mean training frame")
    val_fmri = rows["fmri"][val].mean(1)
    save(predict(system.net, system, val_fmri), rows["index"][val], scratch / "demo_pr" / "val", "demo PR")
    save(
        predict(system.net, system, rows["test_x"]),
        rows["test_index"],
        scratch / "demo_pr" / "test",
        "demo PR",
    )
    x = rows["fmri"][train].mean(1).astype(np.float64)
    val_truth = rows["frames"][val].astype(np.float32) / 255
    latent_shape = rows["latents"].shape[1:]

    @torch.no_grad()
    def decode(latents: np.ndarray) -> np.ndarray:
        """Flat latent predictions (N, C·h·w) -> the VAE's frames, uint8 (N, 6, 3, H, W)."""
        flat = torch.from_numpy(latents.astype(np.float32))
        frames = system.decode_frames(flat.reshape((len(latents),) + latent_shape)).clamp(0, 1)
        return (frames * 255).round().to(torch.uint8).numpy()

    lam, predict_latents = dual_ridge(
        x,
        rows["latents"][train].reshape(len(train), -1).astype(np.float64),
        val_fmri,
        lambda predicted: frame_pixcorr(decode(predicted).astype(np.float32) / 255, val_truth),
    )
    for split, fmri, index in (
        ("val", val_fmri, rows["index"][val]),
        ("test", rows["test_x"], rows["test_index"]),
    ):
        save(decode(predict_latents(fmri)), index, scratch / "latent_ridge" / split, "latent ridge")
    lambdas = {"latent": lam}
    targets = {split: scratch / "pixel_ridge" / split for split in ("val", "test")}
    lambdas["pixel"] = ridge_blurry(rows, targets)["lambda"]
    return lambdas


def main() -> None:
    from end_to_end import evaluate
    from generated_block import write_block

    from neuroclips.utils.environment import apply_environment_defaults

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", type=Path, default=REPO / "runs/demo/subj1", help="a finished demo run")
    parser.add_argument("--data-file", type=Path, default=REPO / "data/simulated_tiny.h5")
    parser.add_argument("--work", type=Path, default=REPO / "runs/pr_vs_ridge")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("pr_vs_ridge.md"))
    args = parser.parse_args()
    apply_environment_defaults()
    run, data_file, work = args.run.resolve(), args.data_file.resolve(), args.work.resolve()
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="pr_vs_ridge_") as scratch:
        spawn = multiprocessing.get_context("spawn")
        with spawn.Pool(2, maxtasksperchild=1) as pool:  # two one-thread fits at a time on the 2-core machine
            jobs = {t: pool.apply_async(refit, (t, str(run), str(data_file), scratch)) for t in VARIANTS}
            system, cfg = run_system(run)
            rows = split_rows(data_file, int(cfg.subj.id), cfg.data)
            lambdas = linear_rows(system, rows, Path(scratch))
            seconds = {t: job.get() for t, job in jobs.items()}
        titles = {
            "mean_frame": "mean training frame (no brain data)",
            "demo_pr": "the demo run's PR (`stage=pr`, selected checkpoint)",
            **{slug(t): f"PR {t}" for t in VARIANTS},
            "latent_ridge": f"closed-form ridge to the VAE latents, decoded (λ {lambdas['latent']:g})",
            "pixel_ridge": f"closed-form ridge to the pixels (λ {lambdas['pixel']:g})",
        }
        scores = {}
        for folder, title in titles.items():
            scores[title] = {
                split: evaluate(
                    Path(scratch) / folder / split, data_file, work / folder / split, False, split, "blurry"
                )["metrics"]
                for split in ("val", "test")
            }
            print(title, {s: round(m["pixcorr"]["value"], 3) for s, m in scores[title].items()}, flush=True)
    shown = run.relative_to(REPO) if run.is_relative_to(REPO) else run
    head = " | ".join(f"{split} {col}" for split in ("val", "test") for col in COLUMNS)
    lines = [
        "### The tiny PR against closed-form ridges (scale=tiny, blurry videos, validation and test clips)",
        "",
        f"Produced by `python experiments/simulated_benchmark/pr_vs_ridge.py` from the demo run `{shown}` on "
        f"`{data_file.name}` ({time.time() - start:.0f} s; re-fits {min(seconds.values()):.0f}-"
        f"{max(seconds.values()):.0f} s each with one thread, two at a time). Every row is a blurry video of 6 "
        "frames scored by the eval stage (`experiment=demo`, `kinds=[blurry]`): rgb255 SSIM, PixCorr, top-1 video "
        "2-way with the fitted VideoMAE stand-in; mean over clips. Re-fits: the demo's PR recipe without the "
        "teacher term, one change at a time (default in brackets), seed as the run's.",
        "",
        f"| blurry videos from | {head} |",
        "|---|" + "---|" * (2 * len(COLUMNS)),
    ]
    for title, by_split in scores.items():
        cells = [f"{by_split[s][name]['value']:.3f}" for s in ("val", "test") for name in COLUMNS.values()]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    write_block(args.out, "pr_vs_ridge", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
