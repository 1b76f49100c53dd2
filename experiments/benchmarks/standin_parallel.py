"""Do the stand-in fits use a second CPU thread? Seconds per training step of the tiny video UNet (+ motion modules,
SparseCtrl, text encoder; two 16-frame clips) and of the tiny unCLIP UNet (32 frames), with 1 thread, with 2 threads,
and as two 1-thread processes side by side (what `stage=standins` does with `workers`, tasks/standin_jobs.py).

    python experiments/benchmarks/standin_parallel.py [--steps 20] [--out experiments/benchmarks/standin_parallel.md]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def step_seconds(net: str, threads: int, steps: int) -> float:
    """Mean seconds of one AdamW step of ``net`` after 3 warm-up steps (runs in this process)."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if net == "video":
        from neuroclips.tasks import standin_video_fit as vf

        arch = dict(keyframe_index=0)
        nets = vf.build_trainable(0, "per_frame")
        ids, _ = vf.prompt_ids(["a red star moving left over a blue gradient background"] * 2)
        modules = (nets.unet, nets.controlnet, nets.text_encoder)
        x, keyframes = torch.randn(2, 4, 16, 8, 8), torch.randn(2, 4, 8, 8)

        def loss():
            t = torch.randint(0, 1000, (2,))
            out = vf.predict_noise(nets, x, t, ids, keyframes, torch.ones(2, dtype=torch.bool), arch)
            return F.mse_loss(out, x)
    else:
        from neuroclips.models.unclip_generator import build_unclip

        unet = build_unclip("random", "tiny", 32, init_seed=0).unet.requires_grad_(True).train()
        modules = (unet,)
        x = torch.randn(32, 4, 8, 8)  # 32 px through the f4 VAE
        context = torch.randn(32, 16, unet.config.cross_attention_dim)  # the tiny CLIP's 16 tokens
        added = {
            "text_embeds": torch.zeros(32, 0),
            "time_ids": torch.tensor([[768.0, 768.0, 0.0, 0.0]]).repeat(32, 1),
        }

        def loss():
            t = torch.randint(0, 1000, (32,))
            out = unet(x, t, encoder_hidden_states=context, added_cond_kwargs=added).sample
            return F.mse_loss(out, x)

    opt = torch.optim.AdamW([p for m in modules for p in m.parameters()], lr=1e-4)
    for i in range(steps + 3):
        if i == 3:
            start = time.perf_counter()
        opt.zero_grad()
        loss().backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def side_by_side(net: str, steps: int) -> float:
    """Mean of two 1-thread processes' step seconds, run at the same time."""
    cmd = [sys.executable, __file__, "--one", net, "--steps", str(steps)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO) for _ in range(2)]
    return sum(float(p.communicate()[0].strip().splitlines()[-1]) for p in procs) / 2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    sys.path.insert(0, str(REPO))
    if args.one:
        print(step_seconds(args.one, 1, args.steps))
        return
    lines = [
        "# Stand-in fits: seconds per training step by CPU threads (`experiments/benchmarks/standin_parallel.py`)",
        "",
        "| fit | 1 thread | 2 threads | two 1-thread processes side by side (each) | steps done per second, 2 threads"
        " → side by side |",
        "|---|---|---|---|---|",
    ]
    for net, title in (("video", "video UNet, 2 clips × 16 frames"), ("unclip", "unCLIP UNet, 32 frames")):
        one, two, both = (
            step_seconds(net, 1, args.steps),
            step_seconds(net, 2, args.steps),
            side_by_side(net, args.steps),
        )
        lines.append(f"| {title} | {one:.3f} | {two:.3f} | {both:.3f} | {1 / two:.1f} → {2 / both:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
