"""End-to-end learning table of a finished demo run: the final videos against what no brain data (or no part of the
method) gives, on the test clips, every row scored by the same evaluation (issue #13 item 3).

Rows:
* the final videos, the blurry videos and the keyframes repeated over the clip (the run's own outputs);
* the mean training frame and our videos with the clips permuted (shuffled fMRI): the eval stage's same-run
  baselines (``task.baselines``, neuroclips/evaluation/baselines.py);
* the method's ablations, each a ``stage=video`` run over the same keyframes, blurry videos and captions with one
  part switched off: no keyframe (``video.use_keyframe=false``: SparseCtrl off), no blurry video
  (``video.alpha_mode=none``: α off), no caption (``video.use_caption=false``: the prompt "a smooth video").

* the blurry videos as α hands them to the generator, interpolated to 16 frames at its size and encoded and decoded
  by its VAE (no diffusion step): what the generator could keep of the blurry video, its ceiling where the
  keyframe and the caption add nothing.

Each ablation writes into its own outputs folder under ``--work`` (the run's keyframe, blurry and caption outputs
are hard-linked there), so the demo run itself is never touched, and is scored by ``python -m neuroclips.evaluate``.

``--split val`` scores the validation clips instead (held-out blocks of the training clips, the split that model
selection uses): it first runs ``stage=blurry``, ``stage=keyframe`` and ``stage=video`` of the finished run with
``datamodule.predict_split=val`` into ``--work`` and scores them like the demo's eval stage, so that a generation
setting can be chosen there and not on the test clips.

    python experiments/simulated_benchmark/end_to_end.py [--run runs/demo/subj1] [--data-file data/simulated_tiny.h5]
        [--split test|val] [--out experiments/simulated_benchmark/end_to_end.md]
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

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ridge_frames import read_rows, ridge_blurry  # noqa: E402  (this folder: the script's own sys.path entry)

from neuroclips.generation.video import alpha_frames  # noqa: E402
from neuroclips.outputs import OutputStore  # noqa: E402
from neuroclips.utils.environment import apply_environment_defaults  # noqa: E402

ABLATIONS = {
    "no keyframe (SparseCtrl off)": "video.use_keyframe=false",
    "no blurry video (α off)": "video.alpha_mode=none",
    "no caption": "video.use_caption=false",
}
METRICS = {  # column title -> metric name in metrics.json
    "SSIM": "ssim_rgb255",
    "PSNR": "psnr_skimage",
    "PixCorr": "pixcorr",
    "frame 2-way": "frame_2way_strict",
    "frame 50-way": "frame_50way_strict",
    "video 2-way": "video_2way_strict",
    "video 50-way": "video_50way_strict",
    "CLIP-pcc": "clip_pcc_all_pairs",
}
INPUT_KINDS = ("keyframe", "blurry", "caption")
RIDGE_ROW = "closed-form pixel ridge, fMRI -> 6 frames (no method; λ {lambda:g} chosen on validation)"


def cli(module: str, args: list[str]) -> float:
    start = time.time()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.exit(f"failed: {module} {' '.join(args)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return time.time() - start


def link_inputs(outputs: Path, target: Path) -> None:
    """The run's keyframe, blurry and caption outputs (files and sidecars), hard-linked into ``target``."""
    for kind in INPUT_KINDS:
        (target / kind).mkdir(parents=True, exist_ok=True)
        for f in (outputs / kind).iterdir():
            if f.is_file() and not (target / kind / f.name).exists():
                os.link(f, target / kind / f.name)


def repeated_keyframes(outputs: Path, target: Path, frames: int) -> None:
    """Each clip's keyframe repeated over ``frames`` frames, as the ``video`` kind of a store in ``target``."""
    source, store = OutputStore(outputs), OutputStore(target)
    for clip in source.done("keyframe"):
        image = source.load("keyframe", clip)
        store.save("video", clip, np.repeat(image[None], frames, axis=0), {"source": "keyframe repeated"})


def alpha_input(source: OutputStore, clip: int, size: int, interpolation: str) -> torch.Tensor:
    """A clip's blurry video as α receives it (generation/video.alpha_frames): (16, 3, size, size) in [0, 1]."""
    frames = torch.from_numpy(np.asarray(source.load("blurry", clip), np.float32))
    frames = frames / 255.0 if frames.max() > 1.5 else frames
    return alpha_frames(frames[None], size, interpolation)[0].clamp(0, 1)


@torch.no_grad()
def vae_round_trip(outputs: Path, target: Path, vae_dir: Path, size: int, interpolation: str) -> None:
    """Each clip's blurry video as α encodes it (generation/video.alpha_frames), decoded again by the generator's
    VAE from the latent mean, as the ``video`` kind of a store in ``target``."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(vae_dir).eval()
    source, store = OutputStore(outputs), OutputStore(target)
    for clip in source.done("blurry"):
        frames16 = alpha_input(source, clip, size, interpolation)
        decoded = vae.decode(vae.encode(2 * frames16 - 1).latent_dist.mean).sample
        store.save("video", clip, ((decoded.clamp(-1, 1) + 1) / 2).numpy(), {"source": "blurry via the VAE"})


def predict_validation(run: Path, data_file: Path, work: Path, subject: int) -> dict:
    """Blurry videos, keyframes and videos of the finished ``run`` for the validation clips, in ``work/outputs``,
    scored like the eval stage (with its same-run baselines); the eval's kind documents."""
    outputs = work / "outputs"
    shutil.rmtree(work, ignore_errors=True)
    for stage in ("blurry", "keyframe", "video"):
        media = ["video.write_media=false"] if stage == "video" else []  # the scores need no GIFs
        cli(
            "neuroclips.train",
            [f"stage={stage}", *stage_args(run, data_file, work / stage, outputs, subject), *media],
        )
    cli(
        "neuroclips.evaluate",
        [
            f"source={outputs}",
            f"gt={data_file}",
            f"out={work / 'eval'}",
            "experiment=demo",
            "task.split=train",
        ],
    )
    return json.loads((work / "eval" / "metrics.json").read_text())


def stage_args(
    run: Path, data_file: Path, run_dir: Path, outputs: Path, subject: int, split: str = "val"
) -> list:
    """A predict stage of ``run`` over ``split``, writing into ``outputs`` (the run's own folders untouched)."""
    return [
        "experiment=demo",
        f"subj={subject}",
        f"data.file={data_file}",
        f"paths.run_root={run}",
        f"paths.run_dir={run_dir}",
        f"paths.outputs_dir={outputs}",
        f"datamodule.predict_split={split}",
        "logger=none",
        "trainer.enable_progress_bar=false",
    ]


def evaluate(
    source: Path, data_file: Path, out: Path, baselines: bool, split: str = "test", kind: str = "video"
) -> dict:
    args = [f"source={source}", f"gt={data_file}", f"out={out}", f"kinds=[{kind}]", "experiment=demo"]
    args.append(f"task.split={'train' if split == 'val' else 'test'}")  # validation clips are training rows
    if not baselines:
        args.append("task.baselines.names=[]")
    cli("neuroclips.evaluate", args)
    return json.loads((out / "metrics.json").read_text())["kinds"][kind]


def main() -> None:
    apply_environment_defaults()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--run", type=Path, default=REPO / "runs/demo/subj1", help="a finished demo run (subject folder)"
    )
    p.add_argument("--data-file", type=Path, default=REPO / "data/simulated_tiny.h5")
    p.add_argument("--split", choices=("test", "val"), default="test", help="the clips scored")
    p.add_argument("--work", type=Path, default=None, help="default: runs/end_to_end (runs/end_to_end_val)")
    p.add_argument(
        "--out", type=Path, default=None, help="default: end_to_end.md (end_to_end_val.md) beside this"
    )
    args = p.parse_args()
    suffix = "_val" if args.split == "val" else ""
    args.work = (args.work or REPO / f"runs/end_to_end{suffix}").resolve()
    args.out = args.out or Path(__file__).with_name(f"end_to_end{suffix}.md")
    args.data_file = args.data_file.resolve()
    run = args.run.resolve()
    config = yaml.safe_load((run / "video" / "config.yaml").read_text())
    subject = int(config["subj"]["id"])
    start = time.time()
    if args.split == "val":
        doc = predict_validation(run, args.data_file, args.work / "run", subject)
        outputs = args.work / "run" / "outputs"
    else:
        doc, outputs = json.loads((run / "eval" / "metrics.json").read_text()), run / "outputs"
    video_frames = int(np.load(next((outputs / "video").glob("*.npy"))).shape[0])
    rows: dict[str, dict] = {}
    ours = doc["kinds"]["video"]
    rows["final videos (ours)"] = ours["metrics"]
    rows["blurry videos (ours, PR only)"] = doc["kinds"]["blurry"]["metrics"]
    for name, title in (
        ("mean_frame", "mean training frame"),
        ("shuffled", "final videos, clips permuted (shuffled fMRI)"),
    ):
        if "metrics" in ours.get("baselines", {}).get(name, {}):
            rows[title] = ours["baselines"][name]["metrics"]
    derived = {
        "keyframes repeated (ours, SR only)": lambda target: repeated_keyframes(
            outputs, target, video_frames
        ),
        "blurry videos through the generator's VAE (α's input, no diffusion)": lambda target: vae_round_trip(
            outputs,
            target,
            Path(config["scale"]["standins"]["generator_vae"]["dir"]),
            config["scale"]["gen"]["video"]["size"],
            config["video"]["interpolation"],
        ),
    }
    for (title, make), folder in zip(derived.items(), ("keyframe_repeated", "blurry_vae")):
        shutil.rmtree(args.work / folder, ignore_errors=True)
        make(args.work / folder / "outputs")
        rows[title] = evaluate(
            args.work / folder / "outputs", args.data_file, args.work / folder / "eval", False, args.split
        )["metrics"]
    ridge_rows = read_rows(args.data_file, subject, config["data"])
    ridge = ridge_blurry(ridge_rows, {args.split: args.work / "ridge" / "outputs"})
    rows[RIDGE_ROW.format(**ridge)] = evaluate(
        args.work / "ridge" / "outputs",
        args.data_file,
        args.work / "ridge" / "eval",
        False,
        args.split,
        "blurry",
    )["metrics"]
    for title, override in ABLATIONS.items():
        folder = args.work / override.split("=")[0].split(".")[1]
        shutil.rmtree(folder, ignore_errors=True)
        link_inputs(outputs, folder / "outputs")
        stage = stage_args(run, args.data_file, folder / "video", folder / "outputs", subject, args.split)
        cli("neuroclips.train", ["stage=video", *stage, "video.write_media=false", override])
        rows[f"ablation: {title}"] = evaluate(
            folder / "outputs", args.data_file, folder / "eval", False, args.split
        )["metrics"]
    write_table(args, doc, rows, time.time() - start)


def write_table(args, doc: dict, rows: dict[str, dict], seconds: float) -> None:
    def cell(metrics: dict, name: str) -> str:
        e = metrics.get(name)
        return "–" if not e else f"{e['value']:.3f} ± {e['std']:.3f}"

    best = {
        col: max(rows, key=lambda r: rows[r].get(name, {}).get("value", float("-inf")))
        for col, name in METRICS.items()
    }
    final, beats = rows["final videos (ours)"], []
    for base in ("mean training frame", "final videos, clips permuted (shuffled fMRI)"):
        for col in ("SSIM", "video 2-way"):
            name = METRICS[col]
            if base in rows and name in final and name in rows[base]:
                won = final[name]["value"] > rows[base][name]["value"]
                beats.append(f"{col} vs {base}: {'yes' if won else '**no**'}")
    clips = "validation" if args.split == "val" else "test"
    run = args.run.resolve()
    shown = run.relative_to(REPO) if run.is_relative_to(REPO) else run
    flag = " --split val" if args.split == "val" else ""
    lines = [
        f"# End-to-end learning table on the simulated brain (scale=tiny, demo run, {clips} clips)",
        "",
        f"Produced by `python experiments/simulated_benchmark/end_to_end.py{flag}` from the demo run `{shown}` "
        f"({doc['kinds']['video']['n_clips']} {clips} clips, subject {doc['subject']}; {seconds:.0f} s for "
        f"{'the predict stages, ' if args.split == 'val' else ''}the ablations and their scoring). Every row scored by the same eval stage (`experiment=demo`: the N-way classifiers are the "
        "tiny ViT/VideoMAE stand-ins fitted to the simulated scene classes); top-1 (`strict`) N-way, SSIM on RGB, "
        "PSNR as scikit-image, CLIP-pcc over all frame pairs; mean ± std over clips. Best value per column in bold.",
        "",
        "| row | " + " | ".join(METRICS) + " |",
        "|---|" + "---|" * len(METRICS),
    ]
    for row, metrics in rows.items():
        cells = [
            f"**{cell(metrics, name)}**" if best[col] == row else cell(metrics, name)
            for col, name in METRICS.items()
        ]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Does the final video beat the baselines (the issue's check)? " + "; ".join(beats) + ".",
        "",
    ]
    start, end = "<!-- generated table: start end_to_end -->", "<!-- generated table: end end_to_end -->"
    old = args.out.read_text() if args.out.exists() else ""
    reading = old.split(end, 1)[1] if end in old else "\n"  # the hand-written reading below the table stays
    args.out.write_text(start + "\n" + "\n".join(lines).strip() + "\n" + end + reading)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
