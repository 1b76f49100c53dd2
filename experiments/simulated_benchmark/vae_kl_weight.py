"""How faithfully do the tiny VAEs round-trip the frames, smooth ones above all, by their KL weight? Validation clips.

Why it matters: the PR predicts the latents of its VAE (stage=standins' `tiny_vae`) and its blurry video is that
VAE's decoding; the video generator encodes the blurry video (α) with the generators' shared VAE and decodes every
video it makes with it, and the unCLIP decodes every keyframe with it. SSIM is severe on flat regions (a local
standard deviation of 5/255 where the truth is flat scores about 0.7 in the window), so texture a decoder adds to a
smooth frame costs the final video SSIM against its own blurry input (end_to_end.md).

Fits both VAEs that stage=standins fits (the PR's, neuroclips/tasks/standins.py, at 64 px; the generators',
neuroclips/tasks/standin_generator_vae.py, at 32 px) once per KL weight, everything else at their tiny recipes
(train.standins.vae, train.standins.generator_vae), on the training clips with the validation blocks held out,
into a scratch folder; then scores each on the validation clips' frames at its size (rgb255 SSIM, as the eval stage
computes it, and mean absolute error): the round trip of the sharp frames, the round trip of blurred copies of them
(each frame shrunk to a quarter, a sixth or an eighth of its side and enlarged again: smooth colour fields like
the PR's blurry videos), and the decoded frame's own spatial standard deviation for flat frames of the simulated
backgrounds' colours (0 is exact). Writes a Markdown block.

Usage (repo root): python experiments/simulated_benchmark/vae_kl_weight.py --kl-weights 1e-4 1e-3 3e-3 1e-2
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

BLUR_DIVISORS = (4, 6, 8)  # blurred copies: the frame side divided by these
TITLES = {
    "tiny_vae": ("The PR's tiny VAE", "train.standins.vae"),
    "generator_vae": ("The generators' shared tiny VAE", "train.standins.generator_vae"),
}


def compose_tiny(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    import neuroclips.utils.resolvers  # noqa: F401  (registers ${nc.cwd:})

    conf = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return compose("config", overrides=["experiment=demo", "stage=standins", *overrides])


def to_u8(images: torch.Tensor) -> torch.Tensor:
    return images.clamp(0, 1).mul(255).round().to(torch.uint8)


@torch.no_grad()
def round_trip(vae, images: torch.Tensor) -> torch.Tensor:
    """Encode (posterior mean) and decode [0, 1] images, as the pipelines do."""
    return (vae.decode(vae.encode(images * 2 - 1).latent_dist.mean).sample.clamp(-1, 1) + 1) / 2


def flat_frames(size: int) -> torch.Tensor:
    """One flat frame per background shade of the simulated palette (the plain backgrounds' colours)."""
    from neuroclips.data.simulated_movie import COLOURS

    colours = torch.tensor(list(COLOURS.values())) * 0.45  # simulated_movie._render's background shade
    return colours[:, :, None, None].expand(-1, -1, size, size).contiguous()


def score(vae, frames: torch.Tensor, blurred: torch.Tensor, flat: torch.Tensor) -> dict[str, float]:
    from neuroclips.metrics.ssim import ssim

    def ssim_mean(pred: torch.Tensor, truth: torch.Tensor) -> float:
        return float(ssim(to_u8(pred), to_u8(truth), variant="rgb255").mean())

    sharp, smooth = round_trip(vae, frames), round_trip(vae, blurred)
    return {
        "sharp_ssim": ssim_mean(sharp, frames),
        "sharp_mae": float((sharp - frames).abs().mean()),
        "blurred_ssim": ssim_mean(smooth, blurred),
        "blurred_mae": float((smooth - blurred).abs().mean()),
        "flat_std": float(round_trip(vae, flat).std(dim=(2, 3)).mean()),
    }


def main() -> None:

    from neuroclips.utils.environment import apply_environment_defaults

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-file", default="data/simulated_tiny.h5")
    parser.add_argument("--kl-weights", type=float, nargs="+", default=[1e-4, 1e-3, 3e-3, 1e-2])
    parser.add_argument(
        "--vaes", nargs="+", default=list(TITLES), choices=list(TITLES), help="which VAEs to fit and score"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the demo fits with 1)")
    parser.add_argument("--out", default="experiments/simulated_benchmark/vae_kl_weight.md")
    args = parser.parse_args()
    apply_environment_defaults()
    torch.set_num_threads(args.threads)
    data_file = str(Path(args.data_file).resolve())

    tables = {name: [] for name in args.vaes}
    recipes, counts = {}, {}
    # one fresh process per fit: a second fit in the same process ran about 5 times slower (not traced)
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="vae_kl_") as scratch:
        for weight in args.kl_weights:
            for name in args.vaes:
                with spawn.Pool(1) as pool:
                    scores, seconds, recipe, count = pool.apply(
                        fit_and_score, (name, weight, data_file, scratch, args.threads)
                    )
                tables[name].append((weight, scores, seconds))
                recipes[name], counts[name] = recipe, count
                print(f"{name} kl_weight {weight:g}: {scores} ({seconds:.0f} s)", flush=True)
    for name, rows in tables.items():
        write(Path(args.out), name, rows, recipes[name], counts[name], data_file)


def fit_and_score(name: str, weight: float, data_file: str, scratch: str, threads: int):
    """Fit VAE ``name`` at KL weight ``weight`` into ``scratch`` and score it (score's keys), in this process."""
    from diffusers import AutoencoderKL
    from hydra.utils import instantiate

    from neuroclips.stage_config import data_file as resolve_data_file
    from neuroclips.tasks.standins import held_out_split

    torch.set_num_threads(threads)
    cfg = compose_tiny(
        [
            f"data.file={data_file}",
            f"scale.pr.vae.weights={scratch}/tiny_vae_kl{weight:g}",
            f"train.standins.vae.kl_weight={weight}",
            f"scale.standins.generator_vae.dir={scratch}/generator_vae_kl{weight:g}",
            f"train.standins.generator_vae.kl_weight={weight}",
        ]
    )
    held_out, fingerprint = held_out_split(resolve_data_file(cfg), cfg.data)
    if name == "tiny_vae":
        standin = instantiate(cfg.task, classifiers=None, captioner=None, generator_vae=None)
        size, fit = int(cfg.scale.image_size), standin._fit_vae
    else:
        standin = instantiate(cfg.task.generator_vae)
        size, fit = standin.size, standin.fit_and_save
    frames, blurred, flat = validation_frames(data_file, held_out, size)
    start = time.time()
    fit(data_file, held_out, fingerprint)
    vae = AutoencoderKL.from_pretrained(str(standin.out_dir), local_files_only=True).eval()
    recipe = {k: v for k, v in standin.training.items() if k != "kl_weight"}
    return score(vae, frames, blurred, flat), time.time() - start, recipe, (frames.shape[0], size)


def validation_frames(data_file: str, held_out: np.ndarray, size: int):
    """The validation clips' frames at ``size`` px, blurred copies of them, and flat frames (score's inputs)."""
    from neuroclips.tasks.standin_generator_vae import blurred_copies
    from neuroclips.tasks.standin_unclip import read_frames

    frames = F.interpolate(
        read_frames(data_file, held_out), size=(size, size), mode="bilinear", antialias=True
    )
    blurred = blurred_copies(frames, [size // d for d in BLUR_DIVISORS], seed=0)
    return frames, blurred, flat_frames(size)


def write(path: Path, name: str, rows: list, recipe: dict, count: tuple, data_file: str) -> None:
    from generated_block import write_block

    keys = ("sharp_ssim", "sharp_mae", "blurred_ssim", "blurred_mae", "flat_std")
    best = {k: (max if k.endswith("ssim") else min)(r[1][k] for r in rows) for k in keys}
    cell = lambda k, v: f"**{v:.4f}**" if v == best[k] else f"{v:.4f}"  # noqa: E731
    lines = [
        f"### {TITLES[name][0]} by KL weight (scale=tiny, validation frames)",
        "",
        f"Produced by `python experiments/simulated_benchmark/vae_kl_weight.py` on `{Path(data_file).name}`: "
        f"fitted once per KL weight (recipe otherwise `{TITLES[name][1]}`: {recipe}), scored on the {count[0]} "
        f"frames of the validation clips at {count[1]} px. Round trip = encode (posterior mean), decode. Blurred = "
        "each frame shrunk to 1/4, 1/6 or 1/8 of its side and enlarged again. Flat std = "
        "the decoded frame's spatial standard deviation for flat frames of the simulated backgrounds' colours "
        "(0 is exact). Best per column in bold.",
        "",
        "| KL weight | sharp: SSIM | sharp: MAE | blurred: SSIM | blurred: MAE | flat std | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for weight, s, seconds in rows:
        lines.append(f"| {weight:g} | " + " | ".join(cell(k, s[k]) for k in keys) + f" | {seconds:.0f} |")
    write_block(path, f"vae_kl_weight_{name}", lines)


if __name__ == "__main__":
    main()
