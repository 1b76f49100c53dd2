"""The PR's low-level head at small width: how clip-dependent are its maps, and does a short L1 fit collapse?

1. At initialisation: the rms of the clip-independent and the clip-dependent parts of the head's linear output and
   of its normalised maps, over 64 training clips (`--norm group|batch`, i.e. scale.pr.net.low_level_norm).
2. A short in-process fit (L1 on the cached `vae_latents`, AdamW at a constant lr, consecutive batches of 8 clips,
   the demo's tiny PR net): every 25 steps, over 40 held-out clips, the std of the predicted latents across clips
   (near 0 = a constant, predict-the-mean output) and their correlation with the centred targets.

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
    optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.01)
    net.train()
    start = time.time()
    for step in range(args.steps):
        first = (step * 8) % 520
        loss = (net(voxels[first : first + 8, step % 2])["latents"] - latents[first : first + 8]).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 25 == 0 or step == args.steps - 1:
            net.eval()
            with torch.no_grad():
                pred = torch.cat([net(voxels[560 + i : 568 + i, 0])["latents"] for i in range(0, 40, 8)])
            net.train()
            truth = latents[held_out]
            pc, tc = pred - pred.mean(0), truth - truth.mean(0)
            corr = float((pc * tc).sum() / (pc.norm() * tc.norm() + 1e-8))
            print(
                f"step {step}: train L1 {loss.item():.3f}; held-out: prediction std across clips "
                f"{pred.std(0).mean():.4f}, correlation with centred targets {corr:.3f} ({time.time() - start:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
