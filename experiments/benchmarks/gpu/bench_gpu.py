"""One GPU benchmark for the paper-scale architectures (random weights: cost does not depend on their values).

Measures, each in the reference recipe and in ours:

* SR and PR training steps at the paper batch: seconds per step and peak memory (reference: fp16 mixed precision,
  ours: bf16 mixed precision);
* keyframe generation (SDXL-unCLIP, 38 Euler steps at 768², CFG 5): seconds per clip; reference = batch 1, fp16
  autocast, eager attention; ours = batch 1 and 8, bf16 autocast, scaled-dot-product attention, optional
  ``torch.compile``;
* video generation (AnimateDiff v3 + SparseCtrl, 25 DDIM steps, 16 frames at 256², CFG 8.5): seconds per clip;
  reference = batch 1, fp16, eager attention; ours = batch 1 and 4, bf16, SDPA;
* equality: the same clip and seed from both recipes, max |difference| of the [0, 1] outputs (bf16 tolerance).

    python experiments/benchmarks/gpu/bench_gpu.py                       # one H100: about 6-8 minutes
    python experiments/benchmarks/gpu/bench_gpu.py --device cpu --scale tiny --quick   # CPU path (tests)

Writes ``--out`` (JSON) and ``--table`` (Markdown, the GPU named).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import torch

from neuroclips.utils.environment import apply_environment_defaults

os.environ.setdefault("WANDB_MODE", "disabled")  # benchmark-only override: benchmarks track nothing
apply_environment_defaults()  # offline, quiet: as every neuroclips entry point
sys.path.insert(0, str(Path(__file__).resolve().parent))

import generation_gpu  # noqa: E402
import train_step_gpu  # noqa: E402


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _autocast(device, dtype):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _set_attention(modules, eager: bool) -> None:
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    for m in modules:
        if m is not None and hasattr(m, "set_attn_processor"):
            m.set_attn_processor(AttnProcessor() if eager else AttnProcessor2_0())


def _timed(fn, device, clips: int, bs: int, warmup: bool = True):
    """Seconds per clip over ``clips`` clips in batches of ``bs``, peak GiB, and the first batch's output."""
    if warmup:
        fn(0, bs)
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t, first = time.perf_counter(), None
    for s in range(0, clips, bs):
        out = fn(s, bs)
        first = out if first is None else first
    _sync(device)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return (time.perf_counter() - t) / clips, peak, first


def _recipe_rows(part, name, eager, dtype, batch_sizes, run, device, clips, quick, first: dict) -> list[dict]:
    """Time ``run`` at each batch size; keep the recipe's first clip in ``first`` for the equality check."""
    rows = []
    for bs in batch_sizes:
        n = bs if quick else max(clips, bs)
        sec, peak, out = _timed(run, device, n, bs, warmup=not quick)
        first.setdefault(name, torch.as_tensor(out[:1]).float().cpu())
        rows.append(
            {
                "part": part,
                "recipe": name,
                "batch": bs,
                "s_per_clip": round(sec, 4),
                "peak_gib": None if peak is None else round(peak, 2),
                "attention": "eager" if eager else "sdpa",
                "dtype": str(dtype).replace("torch.", "") if dtype else "float32",
            }
        )
    return rows


def _with_reference_diff(rows: list[dict], first: dict) -> list[dict]:
    """Every row gets the largest absolute difference between the reference recipe's and our first clip."""
    diff = round((first["reference"] - first["ours"]).abs().max().item(), 4)
    return [dict(r, max_abs_diff_vs_reference=diff) for r in rows]


def bench_keyframe(device, scale, clips, batches, compile_unet, quick) -> list[dict]:
    from neuroclips.generation.keyframe import KeyframeRecipe, sample_keyframes
    from neuroclips.models.unclip_generator import build_unclip

    gen, out_size, _, steps, _, ctx_dim, n_tokens = generation_gpu.SIZES[scale]
    comps = build_unclip("random", scale, context_dim=ctx_dim, unclip_file=None, trust_pickle=True)
    comps.unet.to(device)
    comps.vae.to(device)
    tokens = torch.randn(
        max(clips, max(batches)), n_tokens, ctx_dim, generator=torch.Generator().manual_seed(0)
    )
    half = torch.float16 if device.type == "cuda" else None
    bf16 = torch.bfloat16 if device.type == "cuda" else None
    rows = []
    recipes = [("reference", True, half, [1])] + [("ours", False, bf16, batches)]
    first = {}
    for name, eager, dtype, bss in recipes:
        _set_attention([comps.unet], eager)
        unet = comps.unet
        if name == "ours" and compile_unet and device.type == "cuda":
            unet = torch.compile(comps.unet)
        recipe = KeyframeRecipe(steps=steps, gen_size=gen, out_size=out_size, unet_autocast=None)

        def run(s, bs, unet=unet, recipe=recipe, dtype=dtype):
            with _autocast(device, dtype):
                return sample_keyframes(
                    unet, comps.vae, comps.scheduler, recipe, tokens[s : s + bs], list(range(s, s + bs))
                )

        rows += _recipe_rows("keyframe", name, eager, dtype, bss, run, device, clips, quick, first)
    return _with_reference_diff(rows, first)


def bench_video(device, scale, clips, batches, quick) -> list[dict]:
    from neuroclips.generation.video import VideoRecipe, generate_videos
    from neuroclips.models.video_generator import build_video_pipeline

    _, _, vsize, _, steps, _, _ = generation_gpu.SIZES[scale]
    pipe = build_video_pipeline("random", scale)
    for m in (pipe.unet, pipe.vae, pipe.text_encoder, pipe.controlnet):
        m.to(device)
    n_all = max(clips, max(batches))
    g = torch.Generator().manual_seed(0)
    blurry, keys = (
        torch.rand(n_all, 6, 3, vsize, vsize, generator=g),
        torch.rand(n_all, 3, vsize, vsize, generator=g),
    )
    caps = [f"a clip number {i}" for i in range(n_all)]
    recipe = VideoRecipe(size=vsize, steps=steps)
    half = torch.float16 if device.type == "cuda" else None
    bf16 = torch.bfloat16 if device.type == "cuda" else None
    rows, first = [], {}
    for name, eager, dtype, bss in [("reference", True, half, [1]), ("ours", False, bf16, batches)]:
        _set_attention([pipe.unet, pipe.controlnet], eager)

        def run(s, bs, dtype=dtype):
            with _autocast(device, dtype):
                return generate_videos(
                    pipe,
                    recipe,
                    list(range(s, s + bs)),
                    blurry[s : s + bs].to(device),
                    keys[s : s + bs].to(device),
                    caps[s : s + bs],
                )

        rows += _recipe_rows("video", name, eager, dtype, bss, run, device, clips, quick, first)
    return _with_reference_diff(rows, first)


def markdown(result: dict) -> str:
    lines = [
        f"GPU: **{result['device']}**, scale `{result['scale']}`, random weights of the real architectures.",
        "",
        "| part | recipe | batch | precision | attention | s per step / clip | peak GiB | max abs diff vs reference |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["train"]:
        lines.append(
            f"| {r['stage']} train step | {r['recipe']} | {r.get('batch_size')} | {r.get('precision')} | - | "
            f"{r.get('s_per_step', r.get('error'))} | {r.get('peak_gib')} | - |"
        )
    for r in result["generation"]:
        lines.append(
            f"| {r['part']} | {r['recipe']} | {r['batch']} | {r['dtype']} | {r['attention']} | {r['s_per_clip']} | "
            f"{r['peak_gib']} | {r['max_abs_diff_vs_reference']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--scale", default="paper", choices=["paper", "tiny"])
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--keyframe-batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--video-batches", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--train-steps", type=int, default=4)
    ap.add_argument("--compile", action="store_true", help="torch.compile the keyframe UNet in our recipe")
    ap.add_argument("--quick", action="store_true", help="one batch per setting, no warm-up (CPU smoke test)")
    ap.add_argument("--skip", default="", help="comma list of train,keyframe,video to skip")
    ap.add_argument("--out", default="experiments/benchmarks/gpu/results.json")
    ap.add_argument("--table", default="experiments/benchmarks/gpu/results.md")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    skip = set(filter(None, args.skip.split(",")))
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "scale": args.scale,
        "train": [],
        "generation": [],
    }
    t0 = time.time()
    if "train" not in skip:
        cpu = device.type == "cpu"
        for stage in ("sr", "pr"):
            for recipe, prec in (
                ("reference", "32-true" if cpu else "16-mixed"),
                ("ours", "32-true" if cpu else "bf16-mixed"),
            ):
                try:
                    r = train_step_gpu.bench_stage(
                        stage,
                        args.scale,
                        device.type,
                        prec,
                        args.train_steps,
                        2 if args.quick else None,
                        warmup=0 if args.quick else 2,
                    )
                except torch.OutOfMemoryError as e:
                    r = {
                        "stage": stage,
                        "precision": prec,
                        "error": f"out of memory: {str(e).splitlines()[0]}",
                    }
                r["recipe"] = recipe
                result["train"].append(r)
                print(json.dumps(r), flush=True)
    if "keyframe" not in skip:
        result["generation"] += bench_keyframe(
            device, args.scale, args.clips, args.keyframe_batches, args.compile, args.quick
        )
    if "video" not in skip:
        result["generation"] += bench_video(device, args.scale, args.clips, args.video_batches, args.quick)
    result["wall_s"] = round(time.time() - t0, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    Path(args.table).write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
