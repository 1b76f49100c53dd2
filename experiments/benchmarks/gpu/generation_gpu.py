"""The paper-scale generation recipe on a GPU: keyframe (unCLIP, 38 Euler steps at 768², CFG 5) and video
(AnimateDiff v3 + SparseCtrl, 25 DDIM steps, 16 frames at 256², CFG 8.5), seconds per clip at several batch sizes
and peak memory.

    python experiments/benchmarks/gpu/generation_gpu.py                          # cuda, paper architecture, random weights
    python experiments/benchmarks/gpu/generation_gpu.py --weights-dir weights    # the real local weights (scale.gen.paper paths)
    python experiments/benchmarks/gpu/generation_gpu.py --device cpu --scale tiny --clips 2   # CPU smoke path (tests)

Random weights give the same timings as real ones (same shapes); --weights-dir loads unclip6, RealisticVision,
the v3 motion module, SparseCtrl-RGB and the domain LoRA from the file names used in conf/scale/gen/paper.yaml.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from neuroclips.utils.environment import apply_environment_defaults

apply_environment_defaults()  # offline, quiet: as every neuroclips entry point

PAPER_FILES = {
    "unclip_file": "mindeye2/unclip6_epoch0_step110000.ckpt",
    "dreambooth_file": "realistic_vision/realisticVisionV60B1_v51VAE.safetensors",
    "motion_module_file": "animatediff/v3_sd15_mm.ckpt",
    "sparsectrl_file": "animatediff/v3_sd15_sparsectrl_rgb.ckpt",
    "domain_lora_file": "animatediff/v3_sd15_adapter.ckpt",
}
SIZES = {  # scale -> (keyframe gen size, keyframe out size, video size, keyframe steps, video steps, context dim, tokens)
    "paper": (768, 256, 256, 38, 25, 1664, 256),
    "tiny": (32, 32, 32, 4, 2, 32, 16),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> dict:
    from neuroclips.generation.keyframe import KeyframeRecipe, sample_keyframes
    from neuroclips.generation.video import VideoRecipe, generate_videos
    from neuroclips.models.unclip_generator import build_unclip
    from neuroclips.models.video_generator import build_video_pipeline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--scale", default="paper", choices=sorted(SIZES))
    ap.add_argument("--weights-dir", default=None)
    ap.add_argument("--clips", type=int, default=4, help="clips per measurement")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--steps-keyframe", type=int, default=None)
    ap.add_argument("--steps-video", type=int, default=None)
    ap.add_argument(
        "--keyframe-autocast",
        default="float16",
        help="UNet autocast dtype on CUDA (reference fp16); 'none' = off",
    )
    ap.add_argument("--skip-keyframe", action="store_true")
    ap.add_argument("--skip-video", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    gen, out_size, vsize, k_steps, v_steps, ctx_dim, n_tokens = SIZES[args.scale]
    k_steps, v_steps = args.steps_keyframe or k_steps, args.steps_video or v_steps
    local = args.weights_dir is not None
    files = {k: str(Path(args.weights_dir) / v) for k, v in PAPER_FILES.items()} if local else {}
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "scale": args.scale,
        "weights": "local" if local else "random",
        "keyframe_steps": k_steps,
        "video_steps": v_steps,
    }
    g = torch.Generator().manual_seed(0)

    if not args.skip_keyframe:
        comps = build_unclip(
            "local" if local else "random",
            args.scale,
            context_dim=ctx_dim,
            unclip_file=files.get("unclip_file"),
            trust_pickle=True,
        )
        comps.unet.to(device)
        comps.vae.to(device)
        autocast = None if args.keyframe_autocast == "none" else args.keyframe_autocast
        recipe = KeyframeRecipe(steps=k_steps, gen_size=gen, out_size=out_size, unet_autocast=autocast)
        tokens = torch.randn(args.clips, n_tokens, ctx_dim, generator=g)
        for bs in args.batch_sizes:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            sample_keyframes(
                comps.unet, comps.vae, comps.scheduler, recipe, tokens[:bs], list(range(bs))
            )  # warm-up
            sync(device)
            t = time.perf_counter()
            for s in range(0, args.clips, bs):
                sample_keyframes(
                    comps.unet, comps.vae, comps.scheduler, recipe, tokens[s : s + bs], list(range(s, s + bs))
                )
            sync(device)
            result[f"keyframe_s_per_clip_batch{bs}"] = (time.perf_counter() - t) / args.clips
            if device.type == "cuda":
                result[f"keyframe_peak_gib_batch{bs}"] = torch.cuda.max_memory_allocated(device) / 2**30
        del comps
        if device.type == "cuda":
            torch.cuda.empty_cache()

    if not args.skip_video:
        pipe = build_video_pipeline(
            "local" if local else "random",
            args.scale,
            **{
                k: files.get(k)
                for k in ("dreambooth_file", "motion_module_file", "sparsectrl_file", "domain_lora_file")
            },
        )
        for m in (pipe.unet, pipe.vae, pipe.text_encoder, pipe.controlnet):
            m.to(device)
        recipe = VideoRecipe(size=vsize, steps=v_steps)
        blurry, keys = (
            torch.rand(args.clips, 6, 3, vsize, vsize, generator=g),
            torch.rand(args.clips, 3, vsize, vsize, generator=g),
        )
        caps = [f"a clip number {i}" for i in range(args.clips)]
        for bs in args.batch_sizes:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            generate_videos(
                pipe, recipe, list(range(bs)), blurry[:bs].to(device), keys[:bs].to(device), caps[:bs]
            )
            sync(device)
            t = time.perf_counter()
            for s in range(0, args.clips, bs):
                generate_videos(
                    pipe,
                    recipe,
                    list(range(s, s + bs)),
                    blurry[s : s + bs].to(device),
                    keys[s : s + bs].to(device),
                    caps[s : s + bs],
                )
            sync(device)
            result[f"video_s_per_clip_batch{bs}"] = (time.perf_counter() - t) / args.clips
            if device.type == "cuda":
                result[f"video_peak_gib_batch{bs}"] = torch.cuda.max_memory_allocated(device) / 2**30
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
