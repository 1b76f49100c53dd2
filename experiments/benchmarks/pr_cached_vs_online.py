"""Benchmark: one `pr` training epoch with cached VAE latents versus encoding the frames online.

Part 1 (measured end to end, scale=tiny): composes the real `stage=pr` config, builds the DataModule and system the
way the runtime does, and times `trainer.fit` for one epoch (validation off) with
  * cached:  datamodule.targets=[vae_latents], system.latent_source=cached (needs stage=standins and stage=targets);
  * online:  datamodule.targets=[],            system.latent_source=online (the frozen VAE encodes 6 frames per clip).
Part 2 (paper-scale cost per clip, CPU, random weights): times the pieces that differ, i.e. the SD-VAE encoder on
224² frames, against the PR net's forward+backward and the ConvNeXt-XL teacher (two views), so the share of
online encoding in a paper-scale step can be read off without a GPU.

Usage (from the repo root, after `stage=standins` and `stage=targets` on the data file):
  python experiments/benchmarks/pr_cached_vs_online.py --data-file data/simulated_tiny.h5 [--skip-paper]
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    import neuroclips.utils.resolvers  # noqa: F401  (registers ${nc.cwd:} used by conf/paths)

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = hydra_compose("config", overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
    return cfg


def cached_latents_are_per_clip(dm) -> bool:
    item = dm.dataset("train")[0]
    return item["targets"]["vae_latents"].dim() == 4  # (6, 4, h, w)


def time_epoch(data_file: Path, source: str, limit_clips: int | None) -> dict:
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from neuroclips.runtime import build_datamodule

    targets = "[vae_latents]" if source == "cached" else "[]"
    overrides = [
        "stage=pr",
        "scale=tiny",
        f"data.file={data_file}",
        f"paths.data_dir={data_file.parent}",
        f"datamodule.targets={targets}",
        f"system.latent_source={source}",
    ]
    cfg = compose(overrides)
    extra = {"limit_clips": limit_clips} if limit_clips else {}
    dm = build_datamodule(cfg, **extra)
    if source == "cached" and not cached_latents_are_per_clip(dm):
        raise SystemExit(
            f"{data_file}: cached vae_latents are not (6, C, h, w) per clip; rerun stage=targets."
        )
    torch.manual_seed(0)
    system = instantiate(cfg.system, _convert_="partial")
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    start = time.perf_counter()
    trainer.fit(system, datamodule=dm)
    seconds = time.perf_counter() - start
    steps = trainer.global_step
    return {
        "source": source,
        "steps": steps,
        "clips": len(dm.dataset("train")),
        "seconds": seconds,
        "s_per_step": seconds / max(steps, 1),
    }


def time_call(fn, repeats: int = 2) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def paper_piece_costs() -> dict:
    from neuroclips.models.convnext_teacher import ConvNeXtTeacher
    from neuroclips.models.frozen_vae import VaeLatentEncoder, build_autoencoder_kl
    from neuroclips.models.perceptual import PerceptualNet

    torch.manual_seed(0)
    vae = VaeLatentEncoder(vae=build_autoencoder_kl(sample_size=224), image_size=224)
    frame = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        encode = time_call(lambda: vae.encode(frame))
    teacher_one = time_call(partial(ConvNeXtTeacher(), frame), repeats=1)
    net = PerceptualNet(voxels=13447)
    voxels = torch.randn(1, 13447)

    def step():
        out = net(voxels, "clip")
        (out["latents"].mean() + out["aux_tokens"].mean()).backward()

    net_step = time_call(step, repeats=1)
    return {
        "vae_encode_per_frame": encode,
        "teacher_per_frame": teacher_one,
        "net_fwd_bwd_per_clip": net_step,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-file", default="data/simulated_tiny.h5")
    parser.add_argument("--limit-clips", type=int, default=None, help="train clips per epoch (default: all)")
    parser.add_argument("--skip-paper", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data_file = Path(args.data_file).resolve()
    results = [
        time_epoch(data_file, source, args.limit_clips) for source in ("online", "cached", "online", "cached")
    ]
    print("| latents | clips | steps | epoch s | s/step |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['source']} | {r['clips']} | {r['steps']} | {r['seconds']:.1f} | {r['s_per_step']:.3f} |")
    if not args.skip_paper:
        costs = paper_piece_costs()
        per_clip_online = 6 * costs["vae_encode_per_frame"]
        per_clip_rest = costs["net_fwd_bwd_per_clip"] + 12 * costs["teacher_per_frame"]
        print(f"\npaper-scale pieces (CPU, 1 thread, seconds): {costs}")
        print(
            f"per clip: online VAE encoding {per_clip_online:.2f} s vs net fwd+bwd + teacher (2 views) "
            f"{per_clip_rest:.2f} s -> online encoding adds {100 * per_clip_online / per_clip_rest:.0f}%"
        )


if __name__ == "__main__":
    main()
