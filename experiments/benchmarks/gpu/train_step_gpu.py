"""Training-step benchmark of the real SR and PR architectures: seconds per optimizer step and peak GPU memory.

Compute cost does not depend on the weights' values, so the paper-scale systems are built with random weights
(``scale.pretrained=random``, frozen-weight files off) and fed synthetic batches of the paper's shapes through a
real Lightning Trainer (same precision plugin, optimizer and schedule as ``python -m neuroclips.train``).

    python experiments/benchmarks/gpu/train_step_gpu.py                                 # cuda, paper scale
    python experiments/benchmarks/gpu/train_step_gpu.py --device cpu --scale tiny --steps 2   # CPU smoke (tests)

Recipes: ``reference`` = fp16 mixed precision (what the research code runs under accelerate), ``ours`` =
bf16 mixed precision. Writes ``--out`` (JSON) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from neuroclips.utils.environment import apply_environment_defaults

os.environ.setdefault("WANDB_MODE", "disabled")  # benchmark-only override: benchmarks track nothing
apply_environment_defaults()  # offline, quiet: as every neuroclips entry point

RANDOM_WEIGHTS = {  # frozen-weight files switched off so the real architectures build with random weights
    "sr": ["scale.pretrained=random", "scale.sr.text_projector_path=null", "scale.sr.clip_weights_path=null"],
    "pr": ["scale.pretrained=random", "scale.pr.teacher.weights=null", "scale.pr.vae.weights=null"],
}


def compose(stage: str, scale: str, extra: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    import neuroclips.utils.resolvers  # noqa: F401

    conf = str(Path(__file__).resolve().parents[3] / "conf")
    overrides = [f"stage={stage}", f"scale={scale}", *RANDOM_WEIGHTS[stage], *extra]
    with initialize_config_dir(config_dir=conf, version_base="1.3"):
        cfg = hydra_compose("config", overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
    return cfg


def synthetic_item(stage: str, cfg, system) -> dict:
    """One training item with the DataModule's keys and the configured shapes (docs/contracts.md)."""
    v = int(cfg.subj.voxels)
    item = {"fmri": torch.randn(v), "clip_index": 0, "split_index": 0, "rep": 0, "keyframe_index": 2}
    if stage == "sr":
        s = cfg.scale.sr
        item["targets"] = {
            "clip_tokens": torch.randn(int(s.clip_tokens), int(s.clip_dim)),
            "caption_emb": torch.randn(int(s.text_dim)),
        }
    else:
        size = int(cfg.scale.image_size)
        frames = torch.rand(6, 3, size, size)
        item["frames"], item["keyframe"] = frames, frames[2]
        with torch.no_grad():
            lat = system.vae.encode(frames[:1].float())  # the frozen VAE fixes the latent shape
        item["targets"] = {"vae_latents": torch.randn(6, *lat.shape[1:])}
    return item


class _Repeat(torch.utils.data.Dataset):
    def __init__(self, item: dict, n: int):
        self.item, self.n = item, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.item


def bench_stage(
    stage: str, scale: str, device: str, precision: str, steps: int, batch_size: int | None, warmup: int = 2
) -> dict:
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    cfg = compose(stage, scale, [])
    bs = int(batch_size or cfg.datamodule.batch_size)
    torch.manual_seed(0)
    system = instantiate(cfg.system, _convert_="partial")
    item = synthetic_item(stage, cfg, system)
    times: list[float] = []

    class Timer(pl.Callback):
        def on_train_batch_start(self, *a, **k):
            if device == "cuda":
                torch.cuda.synchronize()
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, *a, **k):
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t0)

    loader = torch.utils.data.DataLoader(_Repeat(item, bs * (steps + warmup)), batch_size=bs, num_workers=0)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer = pl.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision=precision,
        max_epochs=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Timer()],
    )
    trainer.fit(system, train_dataloaders=loader)
    measured = times[warmup:] or times
    trainable = sum(p.numel() for p in system.parameters() if p.requires_grad)
    return {
        "stage": stage,
        "scale": scale,
        "precision": precision,
        "batch_size": bs,
        "steps": len(measured),
        "trainable_params": trainable,
        "s_per_step": round(sum(measured) / len(measured), 4),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None,
    }


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--scale", default="paper", choices=["paper", "tiny"])
    ap.add_argument("--stages", default="sr,pr")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=None, help="default: the stage's configured batch")
    ap.add_argument("--recipes", default="reference,ours")
    ap.add_argument("--out", default="experiments/benchmarks/gpu/train_step.json")
    args = ap.parse_args(argv)
    cpu = args.device == "cpu"
    precisions = {"reference": "32-true" if cpu else "16-mixed", "ours": "32-true" if cpu else "bf16-mixed"}
    rows = []
    for stage in args.stages.split(","):
        for recipe in args.recipes.split(","):
            try:
                r = bench_stage(
                    stage, args.scale, args.device, precisions[recipe], args.steps, args.batch_size
                )
            except torch.OutOfMemoryError as e:
                r = {
                    "stage": stage,
                    "precision": precisions[recipe],
                    "error": f"out of memory: {str(e).splitlines()[0]}",
                }
            r["recipe"] = recipe
            rows.append(r)
            print(json.dumps(r), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps({"device": torch.cuda.get_device_name() if not cpu else "cpu", "rows": rows}, indent=2)
    )
    print(
        "| stage | recipe | precision | batch | s/step | peak GiB | trainable |\n|---|---|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r['stage']} | {r['recipe']} | {r.get('precision')} | {r.get('batch_size')} | {r.get('s_per_step', r.get('error'))} "
            f"| {r.get('peak_gib')} | {r.get('trainable_params')} |"
        )
    return rows


if __name__ == "__main__":
    main()
