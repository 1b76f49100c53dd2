"""The PR's low-level head at small width: how clip-dependent are its maps, and does a short L1 fit collapse?

1. At initialisation: the rms of the clip-independent and the clip-dependent parts of the head's linear output and
   of its normalised maps, over 64 training clips (`--norm group|batch`, i.e. scale.pr.net.low_level_norm).
2. A short in-process fit (L1 on the cached `vae_latents`, AdamW at a constant lr, consecutive batches of 8 clips,
   the demo's tiny PR net): every 25 steps, over 40 held-out clips, the std of the predicted latents across clips
   (near 0 = a constant, predict-the-mean output) and their correlation with the centred targets.
3. `--trace`: at each of those points, where along the net the clip-dependent part is lost: for the ridge, the
   head's linear output and maps, and every decoder stage (conv_in, mid block, up blocks, conv_norm_out, conv_out),
   the rms across the 40 held-out clips of the clip-dependent part / of the clip-independent part.
   `--order blocks` draws the consecutive 8-clip batches in a random order each pass instead of in movie order,
   `--order shuffled` 8 clips from the whole training set each step (with `--window clip`: a shuffled loader);
   `--centre` fits targets minus the mean training latent; `--decoder-lr` gives the decoder its own constant lr;
   `--zero-out` starts the decoder's last conv at zero; `--ridge-lr` gives the ridge and Inception Extension theirs.

Usage (repo root, after stage=standins and stage=targets on the data file):
  python experiments/simulated_benchmark/pr_head_dynamics.py --norm group --steps 50
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import h5py
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    import neuroclips.utils.resolvers  # noqa: F401

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-file", default="data/simulated_tiny.h5")
    parser.add_argument("--norm", default="group")
    parser.add_argument("--dropout", type=float, default=None, help="scale.pr.net.low_level_dropout")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=25, help="steps between held-out measurements")
    parser.add_argument("--trace", action="store_true", help="clip-dependent/independent rms along the net")
    parser.add_argument("--order", choices=("movie", "blocks", "shuffled"), default="movie")
    parser.add_argument("--window", choices=("batch", "clip"), default="batch", help="system.temporal_window")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--centre", action="store_true", help="fit targets minus the mean training latent")
    parser.add_argument("--decoder-lr", type=float, default=None)
    parser.add_argument(
        "--ridge-lr", type=float, default=None, help="lr of the ridge and Inception Extension"
    )
    parser.add_argument("--zero-out", action="store_true", help="decoder.conv_out starts at zero")
    args = parser.parse_args()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "stage=pr",
                "experiment=demo",
                f"scale.pr.net.low_level_norm={args.norm}",
                *([f"scale.pr.net.low_level_dropout={args.dropout}"] if args.dropout is not None else []),
            ],
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    net = instantiate(cfg.system.net)
    with h5py.File(args.data_file, "r") as f:
        voxels = torch.from_numpy(f["fmri/subj01/train"][:].astype(np.float32))
        latents = torch.from_numpy(f["targets/vae_latents/train"][:].astype(np.float32))

    net.eval()
    with torch.no_grad():
        linear = net.low_level.linear(net.backbone(net.ridge(net.inception(voxels[:64, 0]))))
        maps = net.low_level(net.backbone(net.ridge(net.inception(voxels[:64, 0]))))
    for name, x in (("linear output", linear), ("normalised maps", maps)):
        x = x.reshape(64, 6, -1)
        shared = x.mean(0)
        print(
            f"init, {name}: clip-independent rms {shared.pow(2).mean().sqrt():.3f}, "
            f"clip-dependent rms {(x - shared).pow(2).mean().sqrt():.3f}"
        )

    held_out = slice(560, 600)
    if args.centre:
        latents = latents - latents[:520].mean((0, 1), keepdim=True)
    if args.zero_out:
        torch.nn.init.zeros_(net.decoder.conv_out.weight)
        torch.nn.init.zeros_(net.decoder.conv_out.bias)
    decoder = list(net.decoder.parameters())
    adapters = list(net.ridge.parameters()) + list(net.inception.parameters())
    own = {id(p) for p in decoder + adapters}
    groups = [
        {"params": [p for p in net.parameters() if id(p) not in own]},
        {"params": decoder, "lr": args.decoder_lr or args.lr},
        {"params": adapters, "lr": args.ridge_lr or args.lr},
    ]
    optimizer = torch.optim.AdamW(groups, lr=args.lr, weight_decay=0.01)
    block_order = torch.Generator().manual_seed(args.seed)
    blocks: list[int] = []
    net.train()
    start = time.time()
    for step in range(args.steps):
        first = (step * 8) % 520
        if args.order == "blocks":  # the same consecutive 8-clip batches, in a random order each pass
            blocks = blocks or (torch.randperm(65, generator=block_order) * 8).tolist()
            first = blocks.pop()
        clips = torch.arange(first, first + 8)
        if args.order == "shuffled":
            # 8 clips drawn from the whole training set each step (a shuffled loader)
            clips = torch.randperm(520, generator=block_order)[:8]
        predicted = net(voxels[clips, step % 2], args.window)["latents"]
        loss = (predicted - latents[clips]).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % args.every == 0 or step == args.steps - 1:
            net.eval()
            if args.trace:
                print(f"step {step}: " + trace(net, voxels[held_out, 0]))
            with torch.no_grad():
                pred = torch.cat(
                    [net(voxels[560 + i : 568 + i, 0], args.window)["latents"] for i in range(0, 40, 8)]
                )
            net.train()
            truth = latents[held_out]
            pc, tc = pred - pred.mean(0), truth - truth.mean(0)
            corr = float((pc * tc).sum() / (pc.norm() * tc.norm() + 1e-8))
            print(
                f"step {step}: train L1 {loss.item():.3f}; held-out: prediction std across clips "
                f"{pred.std(0).mean():.4f}, correlation with centred targets {corr:.3f} ({time.time() - start:.0f} s)",
                flush=True,
            )


def trace(net, voxels) -> str:
    """'<stage> <clip-dependent rms>/<clip-independent rms>' along the net, over the clips of ``voxels``."""

    def parts(x) -> str:
        x = x.reshape(len(voxels), net.frames_per_clip, -1)
        shared = x.mean(0)
        return f"{(x - shared).pow(2).mean().sqrt():.3g}/{shared.pow(2).mean().sqrt():.3g}"

    stages = [("conv_in", net.decoder.conv_in), ("mid", net.decoder.mid_block)]
    stages += [(f"up{i}", block) for i, block in enumerate(net.decoder.up_blocks)]
    stages += [("norm_out", net.decoder.conv_norm_out), ("conv_out", net.decoder.conv_out)]
    found: list[str] = []
    hooks = [
        module.register_forward_hook(lambda m, i, o, name=name: found.append(f"{name} {parts(o)}"))
        for name, module in stages
    ]
    with torch.no_grad():
        ridge = net.ridge(net.inception(voxels))
        features = net.backbone(ridge)
        linear, maps = net.low_level.linear(features), net.low_level(features)
        net.decoder(maps, net.frames_per_clip)
    for hook in hooks:
        hook.remove()
    return " ".join([f"ridge {parts(ridge)}", f"linear {parts(linear)}", f"maps {parts(maps)}", *found])


if __name__ == "__main__":
    main()
