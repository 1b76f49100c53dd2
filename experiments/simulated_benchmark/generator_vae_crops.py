"""The generators' shared tiny VAE by crop size and step count: how faithfully it carries α's input.

The video generator encodes the blurry video (α: 6 -> 16 frames at the generator's 32 px) with this VAE and decodes
its samples with it, so whatever the VAE's round trip does to a smooth blurry video the final video inherits. For
each recipe (crop size, steps; the rest `train.standins.generator_vae`), the VAE is fitted as `stage=standins` fits
it (training clips only, validation blocks held out, one thread, one spawned process per fit), and the validation
clips' blurry videos of a finished run are sent through it (posterior mean, decode) and scored by the eval stage
against the ground truth; the blurry videos as α receives them (no VAE) are the row to keep up with.

Usage (repo root, after `end_to_end.py --split val`, which writes the validation clips' blurry videos):
  python experiments/simulated_benchmark/generator_vae_crops.py --data-file data/simulated_tiny.h5 \
      --blurry runs/end_to_end_val/run/outputs
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import torch

SIZE, INTERPOLATION = 32, "reference"  # scale.gen.video.size and video.interpolation of experiment=demo
RECIPES = ((16, 2400), (24, 1200), (32, 600), (32, 1200))  # (crop px, steps); (16, 2400) before 2026-12-07


def alpha_inputs(blurry_outputs: Path, target: Path) -> None:
    """Each clip's blurry video as α receives it, as the ``video`` kind of ``target``."""
    from end_to_end import alpha_input

    from neuroclips.outputs import OutputStore

    source, store = OutputStore(blurry_outputs), OutputStore(target)
    for clip in source.done("blurry"):
        store.save("video", clip, alpha_input(source, clip, SIZE, INTERPOLATION).numpy(), {})


def fit_and_round_trip(crop: int, steps: int, data_file: str, blurry: str, scratch: str) -> float:
    """Fit the VAE with this recipe (in this spawned process, one thread), round-trip α's inputs; fit seconds."""
    from hydra.utils import instantiate

    sys.path.insert(0, str(Path(__file__).parent))
    from end_to_end import vae_round_trip
    from vae_kl_weight import compose_tiny

    from neuroclips.stage_config import data_file as resolve_data_file
    from neuroclips.tasks.standins import held_out_split

    torch.set_num_threads(1)
    folder = f"{scratch}/crop{crop}_steps{steps}"
    cfg = compose_tiny(
        [
            f"data.file={data_file}",
            f"scale.standins.generator_vae.dir={folder}/vae",
            f"train.standins.generator_vae.crop_size={crop}",
            f"train.standins.generator_vae.steps={steps}",
        ]
    )
    held_out, fingerprint = held_out_split(resolve_data_file(cfg), cfg.data)
    standin = instantiate(cfg.task.generator_vae)
    start = time.time()
    standin.fit_and_save(data_file, held_out, fingerprint)
    seconds = time.time() - start
    vae_round_trip(Path(blurry), Path(folder) / "outputs", standin.out_dir, SIZE, INTERPOLATION)
    return seconds


def score(outputs: Path, data_file: str, out: Path) -> dict:
    """The eval stage's SSIM and PixCorr of ``outputs``'s video kind on the validation clips."""
    from end_to_end import evaluate

    metrics = evaluate(outputs, Path(data_file), out, baselines=False, split="val")["metrics"]
    return {k: metrics[k]["value"] for k in ("ssim_rgb255", "pixcorr")}


def main() -> None:
    from generated_block import write_block

    from neuroclips.utils.environment import apply_environment_defaults

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-file", default="data/simulated_tiny.h5")
    parser.add_argument("--blurry", default="runs/end_to_end_val/run/outputs", help="validation outputs")
    parser.add_argument("--out", default="experiments/simulated_benchmark/generator_vae_crops.md")
    args = parser.parse_args()
    apply_environment_defaults()
    data_file, blurry = str(Path(args.data_file).resolve()), str(Path(args.blurry).resolve())
    rows = []
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="generator_vae_") as scratch:
        alpha_inputs(Path(blurry), Path(scratch) / "alpha" / "outputs")
        rows.append(
            (
                "α's input, no VAE",
                score(Path(scratch) / "alpha" / "outputs", data_file, Path(scratch) / "a"),
                None,
            )
        )
        for crop, steps in RECIPES:
            with spawn.Pool(1) as pool:  # one fresh process per fit (vae_kl_weight.py says why)
                seconds = pool.apply(fit_and_round_trip, (crop, steps, data_file, blurry, scratch))
            folder = Path(scratch) / f"crop{crop}_steps{steps}"
            rows.append(
                (
                    f"{crop} px crops, {steps} steps",
                    score(folder / "outputs", data_file, folder / "eval"),
                    seconds,
                )
            )
            print(rows[-1], flush=True)
    lines = [
        "### The generators' shared VAE by crop size and steps (scale=tiny, validation clips)",
        "",
        f"Produced by `python experiments/simulated_benchmark/generator_vae_crops.py --blurry {args.blurry}` on "
        f"`{Path(data_file).name}`: each recipe fitted once (seed and the rest of `train.standins.generator_vae` as "
        "configured), then the validation clips' blurry videos as α receives them (16 frames, 32 px) encoded "
        "(posterior mean) and decoded, scored by the eval stage against the ground truth. Fit seconds with one "
        "thread, one fit at a time.",
        "",
        "| recipe | SSIM | PixCorr | fit seconds |",
        "|---|---|---|---|",
        *(
            f"| {name} | {s['ssim_rgb255']:.3f} | {s['pixcorr']:.3f} | {'' if t is None else f'{t:.0f}'} |"
            for name, s, t in rows
        ),
    ]
    write_block(Path(args.out), "generator_vae_crops", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
