"""Generation throughput at scale=tiny on this machine's CPU: clips/s at batch 1 vs batch 4, and our overhead
versus calling the diffusers pipeline directly (target ≤ 5 %).

    python experiments/benchmarks/generation_bench.py [--clips 8] [--steps 4] [--repeats 3] [--out results.json]

"Direct" is ``NeuroClipsVideoPipeline.__call__`` (= diffusers' AnimateDiffSparseControlNetPipeline with a per-clip
keyframe) given the same z_T and keyframe; "ours" is ``generate_videos`` (interpolation, blurry VAE encode, per-clip
seeds, α latents, prompt assembly, then the same call). "Wrapper" isolates everything except the blurry encode
(alpha_mode=none), i.e. the cost of our code around diffusers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from neuroclips.utils.environment import apply_environment_defaults

apply_environment_defaults()  # offline, quiet: as every neuroclips entry point


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> dict:
    from neuroclips.generation.video import NEGATIVE_PROMPT, PROMPT_SUFFIX, VideoRecipe, generate_videos
    from neuroclips.models.video_generator import build_video_pipeline
    from neuroclips.utils.seeding import clip_generators, randn_per_clip

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe = build_video_pipeline("random", "tiny")
    g = torch.Generator().manual_seed(0)
    n = args.clips
    blurry, keys = torch.rand(n, 6, 3, 64, 64, generator=g), torch.rand(n, 3, 64, 64, generator=g)
    caps = [f"a clip number {i}" for i in range(n)]
    recipe = VideoRecipe(size=args.size, steps=args.steps)
    result = {"clips": n, "steps": args.steps, "size": args.size, "threads": args.threads, "device": "cpu"}

    for bs in (1, 4):

        def run_all(bs=bs):
            for s in range(0, n, bs):
                generate_videos(
                    pipe,
                    recipe,
                    list(range(s, s + bs)),
                    blurry[s : s + bs],
                    keys[s : s + bs],
                    caps[s : s + bs],
                )

        result[f"clips_per_s_batch{bs}"] = n / timed(run_all, args.repeats)

    # overhead at batch 1 on one clip
    latent = args.size // pipe.vae_scale_factor
    z = randn_per_clip((4, 16, latent, latent), clip_generators(recipe.seed, [0], "alpha_noise"))
    key = torch.nn.functional.interpolate(keys[:1], size=(args.size,) * 2, mode="bilinear")

    def direct():
        pipe(
            prompt=[caps[0] + PROMPT_SUFFIX],
            negative_prompt=[NEGATIVE_PROMPT],
            num_frames=16,
            height=args.size,
            width=args.size,
            num_inference_steps=args.steps,
            guidance_scale=8.5,
            latents=z,
            conditioning_frames=key[:, None],
            controlnet_frame_indices=[0],
            conditioning_generators=clip_generators(recipe.seed, [0], "keyframe_vae"),
            output_type="pt",
        )

    def ours():
        generate_videos(pipe, recipe, [0], blurry[:1], keys[:1], caps[:1])

    def wrapper():
        generate_videos(
            pipe,
            VideoRecipe(size=args.size, steps=args.steps, alpha_mode="none"),
            [0],
            None,
            keys[:1],
            caps[:1],
        )

    # interleaved and best-of, so load drift on a shared machine hits all three alike
    fns = {"direct": direct, "ours": ours, "wrapper": wrapper}
    for f in fns.values():
        f()
    times = {k: [] for k in fns}
    for _ in range(args.repeats * 2):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    t_direct, t_ours, t_wrap = (min(times[k]) for k in fns)
    result.update(
        direct_s=t_direct,
        ours_s=t_ours,
        wrapper_s=t_wrap,
        overhead_total_pct=100 * (t_ours / t_direct - 1),
        overhead_wrapper_pct=100 * (t_wrap / t_direct - 1),
    )
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
