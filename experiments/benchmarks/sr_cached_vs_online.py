"""Time an ``sr`` training epoch with cached CLIP targets versus ``clip_tokens.online=true`` (frozen CLIP in the loop).

Builds the real stage config (Hydra compose of ``stage=sr``), the real DataModule and system, and times warm training
epochs (validation off) with a Lightning callback. Two scales:

* ``tiny``: the tiny random OpenCLIP (32 px, 16 tokens x 32) and the tiny SR nets;
* ``mid``: OpenCLIP ViT-B-32 architecture with random weights (224 px, 49 tokens x 768, 88 M vision parameters)
  and SR nets with hidden 512: what fits a 2-core CPU box; paper scale (bigG, 1.9 B) needs a GPU.

    python experiments/benchmarks/sr_cached_vs_online.py [--scales tiny mid] [--epochs 2] [--work /tmp/sr_online_bench]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

SCALES = {
    "tiny": [],
    "mid": [
        "scale.sr.clip_model=ViT-B-32",
        "scale.sr.clip_tokens=49",
        "scale.sr.clip_dim=768",
        "scale.sr.text_dim=512",
        "scale.sr.hidden=512",
    ],
}


def env(work: Path) -> dict:
    return {
        **os.environ,
        "NEUROCLIPS_ROOT": str(REPO),
        "NEUROCLIPS_RUNS_DIR": str(work / "runs"),
        "NEUROCLIPS_DATA_DIR": str(work / "data"),
        "HF_HUB_OFFLINE": "1",
        "WANDB_MODE": "disabled",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "PYTHONPATH": str(REPO),
    }


def prepare(scale: str, work: Path, tiny_file: Path | None) -> Path:
    """A data file with the SR targets of this scale's encoders cached (the targets stage, run once)."""
    data = work / scale / "data"
    data.mkdir(parents=True, exist_ok=True)
    if tiny_file is not None and not (data / "simulated_tiny.h5").exists():
        shutil.copyfile(tiny_file, data / "simulated_tiny.h5")  # same clips, its own cache
    # overwrite: a copied file holds the tiny cache, which the targets stage refuses to mix with another encoder
    cmd = [
        sys.executable,
        "-m",
        "neuroclips.train",
        "stage=targets",
        "scale=tiny",
        "task.encoders.vae_latents=null",
        "trainer.enable_progress_bar=false",
        f"task.overwrite={str(tiny_file is not None).lower()}",
        *SCALES[scale],
    ]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=REPO, env=env(work / scale), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    print(f"[{scale}] targets cached in {time.time() - t0:.1f} s (incl. start-up)", flush=True)
    return data / "simulated_tiny.h5"


def time_epochs(scale: str, work: Path, online: bool, epochs: int) -> list[float]:
    """Wall time of each training epoch (seconds), in a fresh process so the two modes do not share caches."""
    code = f"""
import json, time, torch, pytorch_lightning as pl
import neuroclips.utils.resolvers  # registers the config resolvers, as neuroclips.train does
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from neuroclips.runtime import build_datamodule
from neuroclips.callbacks.checkpointing import EpochToData
torch.set_num_threads({os.environ.get("OMP_NUM_THREADS", "1")})
overrides = ["stage=sr", "scale=tiny", "clip_tokens.online={str(online).lower()}", "train.sr.epochs={epochs}",
             *{SCALES[scale]!r}]
with initialize_config_dir(config_dir="{REPO / "conf"}", version_base="1.3"):
    cfg = compose(config_name="config", overrides=overrides)
pl.seed_everything(0, verbose=False)
dm = build_datamodule(cfg)
system = instantiate(cfg.system, _convert_="partial")
class Timer(pl.Callback):
    def __init__(self): self.times = []
    def on_train_epoch_start(self, *a): self.t = time.perf_counter()
    def on_train_epoch_end(self, *a): self.times.append(time.perf_counter() - self.t)
timer = Timer()
trainer = pl.Trainer(accelerator="cpu", max_epochs={epochs}, limit_val_batches=0, logger=False,
                     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                     callbacks=[timer, EpochToData()])
trainer.fit(system, datamodule=dm)
print("EPOCH_TIMES", json.dumps(timer.times))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env(work / scale), capture_output=True, text=True
    )
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("EPOCH_TIMES")]
    if proc.returncode != 0 or not line:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(line[0].split(" ", 1)[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", nargs="+", default=["tiny", "mid"], choices=sorted(SCALES))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("/tmp/sr_online_bench"))
    args = ap.parse_args()
    results = {}
    tiny_file = None
    for scale in args.scales:
        data_file = prepare(scale, args.work, tiny_file)
        tiny_file = tiny_file or data_file
        cached = time_epochs(scale, args.work, online=False, epochs=args.epochs)
        print(f"[{scale}] cached epochs {cached} s", flush=True)
        online = time_epochs(scale, args.work, online=True, epochs=args.epochs)
        warm_c, warm_o = min(cached[1:] or cached), min(online[1:] or online)
        results[scale] = {"cached_s": cached, "online_s": online, "ratio_online_over_cached": warm_o / warm_c}
        print(f"[{scale}] cached {cached} s, online {online} s, warm ratio {warm_o / warm_c:.2f}x")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
