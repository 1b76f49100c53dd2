"""Does the fitted tiny unCLIP (stage=generators) draw the frame its CLIP tokens come from? On the test clips.

Fits the stand-in (neuroclips/tasks/standin_unclip.py) on a simulated file's training clips (validation blocks held
out, as stage=generators does) with the given step counts, then samples keyframes of every test clip's frame 2 (the
frame the simulated caption describes) through the paper-scale loader and the keyframe sampler at tiny settings
(10 Euler steps, CFG 5, random-token uncond, MindEye2 output mapping) from: the true tokens of that frame (the upper
bound of what the SR can hand it), the tokens of another test clip (shuffled: what the keyframe looks like when the
tokens say nothing about this clip), and, as baselines, the random tiny unCLIP (`pretrained=random`, the demo before
this stand-in) and the mean training frame. Scores at 32 px against the true frame: PixCorr (mean Pearson r per
image) and MSE. Writes Markdown (and a PNG grid: rows truth, true tokens, shuffled tokens, random unCLIP).

Usage (repo root): python experiments/simulated_benchmark/unclip_standin.py --data-file data/simulated_tiny.h5 \
    --unet-steps 2500 --vae-steps 600 --out experiments/simulated_benchmark/unclip_standin.md
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F


def compose_tiny(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    import neuroclips.utils.resolvers  # noqa: F401  (registers ${nc.cwd:})

    conf = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return compose("config", overrides=["stage=generators", *overrides])


def main() -> None:
    from hydra.utils import instantiate

    from neuroclips.data.sampler import validation_rows
    from neuroclips.generation.keyframe import KeyframeRecipe, sample_keyframes
    from neuroclips.models.unclip_generator import build_unclip
    from neuroclips.tasks.standin_marker import read_marker
    from neuroclips.tasks.standin_unclip import encode_tokens, frame_pixcorr, read_frames
    from neuroclips.utils.environment import apply_environment_defaults

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-file", default="data/simulated_tiny.h5")
    parser.add_argument(
        "--unet-steps", type=int, default=None, help="default: train.standins.unclip.unet.steps"
    )
    parser.add_argument(
        "--vae-steps", type=int, default=None, help="default: train.standins.generator_vae.steps"
    )
    parser.add_argument("--seed", type=int, default=42, help="the demo's seed")
    parser.add_argument("--work", default="/tmp/unclip_standin", help="where the fitted file is written")
    parser.add_argument("--out", default=None, help="Markdown file (default: print)")
    args = parser.parse_args()
    apply_environment_defaults()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    overrides = [
        f"seed={args.seed}",
        f"data.file={Path(args.data_file).resolve()}",
        "scale.standins.unclip.enabled=true",
        f"scale.standins.unclip.file={Path(args.work).resolve()}/unclip/unclip6_tiny.safetensors",
        f"scale.standins.generator_vae.dir={Path(args.work).resolve()}/generator_vae",
    ]
    if args.unet_steps is not None:
        overrides.append(f"train.standins.unclip.unet.steps={args.unet_steps}")
    if args.vae_steps is not None:
        overrides.append(f"train.standins.generator_vae.steps={args.vae_steps}")
    cfg = compose_tiny(overrides)
    task = instantiate(cfg.task.unclip)
    with h5py.File(args.data_file, "r") as f:
        n_train, n_test = f["stimuli/train/frames"].shape[0], f["stimuli/test/frames"].shape[0]
        test_frames = torch.from_numpy(f["stimuli/test/frames"][:, 2]).float().div(255.0)
    held_out = validation_rows(
        n_train, float(cfg.data.val_fraction), int(cfg.data.val_block), int(cfg.data.val_seed)
    )
    start, run = time.time(), {"experiment": "unclip_standin.py"}
    vae_fit = (  # the shared VAE, then the unCLIP; each re-used from --work when fitted with these settings
        read_marker(task.vae.out_dir)["fit"]
        if task.vae.is_current(run)
        else task.vae.fit_and_save(args.data_file, held_out, run)
    )
    if task.is_current(run):
        fit = read_marker(task.out_file.parent)["fit"]
        fit_seconds = vae_fit["seconds"] + fit["unet"]["seconds"]
    else:
        fit = task.fit_and_save(args.data_file, held_out, run)
        fit_seconds = time.time() - start

    size = int(cfg.scale.gen.keyframe.gen_size)
    context_dim = int(cfg.scale.gen.keyframe.context_dim)
    tokens = encode_tokens(task.clip_encoder, test_frames)
    truth = F.interpolate(
        test_frames, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    train_rows = np.setdiff1d(np.arange(n_train), held_out)
    train = read_frames(args.data_file, train_rows)
    mean_frame = F.interpolate(
        train, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    ).mean(0)
    recipe = KeyframeRecipe(
        steps=int(cfg.scale.gen.keyframe.steps), gen_size=size, out_size=size, seed=args.seed
    )
    indices = list(range(n_test))
    shuffle = torch.from_numpy(np.random.default_rng(args.seed).permutation(n_test))
    shuffle = torch.where(
        shuffle == torch.arange(n_test), (shuffle + 1) % n_test, shuffle
    )  # no clip keeps its own
    fitted = build_unclip("local", "tiny", context_dim, unclip_file=str(task.out_file))
    random = build_unclip("random", "tiny", context_dim)
    rows = {
        "fitted unCLIP, true tokens": sample_keyframes(
            fitted.unet, fitted.vae, fitted.scheduler, recipe, tokens, indices
        ),
        "fitted unCLIP, another clip's tokens (shuffled)": sample_keyframes(
            fitted.unet, fitted.vae, fitted.scheduler, recipe, tokens[shuffle], indices
        ),
        "random unCLIP (pretrained=random), true tokens": sample_keyframes(
            random.unet, random.vae, random.scheduler, recipe, tokens, indices
        ),
        "mean training frame": mean_frame.expand_as(truth),
    }
    scores = {
        name: {"pixcorr": frame_pixcorr(images, truth), "mse": float(F.mse_loss(images, truth))}
        for name, images in rows.items()
    }
    if args.out:
        save_grid(Path(args.out).with_suffix(".png"), truth, list(rows.values())[:3], count=12)
    steps = {**task.training, "vae": task.vae.training}
    # the work folder is this machine's; the table names it by its option
    reparametrised = json.dumps(fit["vae"]).replace(str(Path(args.work).resolve()), "<--work>")
    lines = [
        "# Fitted tiny unCLIP stand-in: keyframes of the simulated test clips (scale=tiny)",
        "",
        f"Produced by `python experiments/simulated_benchmark/unclip_standin.py --unet-steps {steps['unet']['steps']} "
        f"--vae-steps {steps['vae']['steps']}` (seed {args.seed}, data `{Path(args.data_file).name}`; CPU, "
        f"fit {fit_seconds:.0f} s). Fitted on {fit['frames']} frames of the training clips without the validation blocks; "
        f"scored on all {n_test} test clips' frame 2 at {size} px. Validation clips during the fit: PixCorr "
        f"{fit['validation']['pixcorr']:.3f} (shuffled tokens {fit['validation']['pixcorr_shuffled_tokens']:.3f}, "
        f"mean frame {fit['validation']['pixcorr_mean_frame']:.3f}).",
        "",
        "| keyframe | PixCorr | MSE |",
        "|---|---|---|",
        *[f"| {name} | {s['pixcorr']:.3f} | {s['mse']:.4f} |" for name, s in scores.items()],
        "",
        f"Fit: VAE (shared with the video generator) {json.dumps(vae_fit)}, re-parametrised "
        f"{reparametrised}; UNet {json.dumps(fit['unet'])}.",
        "",
    ]
    text = "\n".join(lines)
    if args.out:
        write_keeping_reading(Path(args.out), text)
    print(text)


def write_keeping_reading(path: Path, table: str) -> None:
    """Replace the generated block of ``path``, keeping the hand-written reading around it."""
    start, end = "<!-- generated table: start unclip -->", "<!-- generated table: end unclip -->"
    block = f"{start}\n{table.strip()}\n{end}"
    old = path.read_text() if path.exists() else ""
    if start in old and end in old:
        head, rest = old.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = block + "\n"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def save_grid(path: Path, truth: torch.Tensor, rows: list[torch.Tensor], count: int) -> None:
    from PIL import Image

    grid = torch.cat(
        [torch.cat(list(images[:count].clamp(0, 1)), dim=-1) for images in [truth, *rows]], dim=-2
    )
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(array).resize((array.shape[1] * 3, array.shape[0] * 3), Image.NEAREST).save(path)


if __name__ == "__main__":
    main()
