"""Does the fitted tiny video generator (stage=generators) use its three inputs? On the test clips, with true inputs.

Reads the fitted AnimateDiff + SparseCtrl files through the paper-scale loader (default: the demo's, written by
`make demo`, or `stage=standins` then `stage=generators` with `experiment=demo`) and makes videos of the first `--clips` test clips at the demo's
recipe (32 px, 4 DDIM steps on the fitted schedule, CFG 8.5, α code_t0) from the *true* inputs, the best the SR and PR could hand it: the
true keyframe (frame 2), the true caption, and a blurry video made from the true frames (each frame reduced to 8 px
and enlarged back). Then the method's ablations (no blurry video, no keyframe, no caption), the inputs of another
clip (shuffled), the random tiny generator, and what needs no generator: the blurry input itself, the keyframe
repeated, the mean training frame. Scores: PixCorr (mean Pearson r per frame) and MSE against the true frames, the
generated frames [4, 6, 8, 10, 12, 14] of 16 against the 6 true frames (the eval's selection), at 32 px.

    python experiments/simulated_benchmark/video_standin.py [--data-file data/simulated_tiny.h5] [--clips 60]
        [--out experiments/simulated_benchmark/video_standin.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
FRAMES = [4, 6, 8, 10, 12, 14]  # generated frames scored against the 6 true ones


def pixcorr(videos: torch.Tensor, truth: torch.Tensor) -> float:
    a, b = videos.flatten(2), truth.flatten(2)
    a, b = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
    return float(((a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-8)).mean())


def main() -> None:
    from neuroclips.generation.interpolation import interpolate_frames
    from neuroclips.generation.video import VideoRecipe, generate_videos
    from neuroclips.models.video_generator import build_video_pipeline
    from neuroclips.tasks.standin_marker import read_marker
    from neuroclips.utils.environment import apply_environment_defaults

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-file", default="data/simulated_tiny.h5")
    p.add_argument("--standin-dir", default="data/standins/video", help="the fitted files' folder")
    p.add_argument("--clips", type=int, default=60)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    apply_environment_defaults()
    folder = Path(args.standin_dir)
    files = {
        "dreambooth_file": str(folder / "dreambooth_sd15_tiny.safetensors"),
        "motion_module_file": str(folder / "v3_sd15_mm_tiny.safetensors"),
        "sparsectrl_file": str(folder / "v3_sd15_sparsectrl_rgb_tiny.safetensors"),
    }
    # the noise schedule the files were fitted for (their marker; scale.gen.video.snr_shift when fitted)
    shift = read_marker(folder)["settings"]["architecture"].get("snr_shift", 1.0)
    fitted = build_video_pipeline("local", "tiny", snr_shift=shift, **files)
    random = build_video_pipeline("random", "tiny", snr_shift=shift)
    with h5py.File(args.data_file, "r") as f:
        frames = torch.from_numpy(f["stimuli/test/frames"][: args.clips]).float().div(255.0)
        captions = [
            c.decode() if isinstance(c, bytes) else str(c) for c in f["stimuli/test/captions"][: args.clips]
        ]
        train = torch.from_numpy(f["stimuli/train/frames"][:]).float().div(255.0)
    n, k = frames.shape[:2]

    def resize(x: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
        flat = x.flatten(0, 1) if x.ndim == 5 else x
        out = F.interpolate(flat, size=(size, size), mode=mode, antialias=mode == "bilinear")
        return out.unflatten(0, x.shape[:2]) if x.ndim == 5 else out

    truth = resize(frames, 32)
    blurry = F.interpolate(resize(frames, 8, "area").flatten(0, 1), size=(32, 32), mode="bilinear").unflatten(
        0, (n, k)
    )
    keyframes = truth[:, 2]
    shuffle = torch.roll(torch.arange(n), 1)
    recipe = VideoRecipe(size=32, steps=4)
    clips = list(range(n))

    def make(pipe, **changes) -> torch.Tensor:
        inputs = dict(blurry=blurry, keyframes=keyframes, captions=captions)
        r = VideoRecipe(**{**recipe.__dict__, **changes.pop("recipe", {})})
        inputs.update(changes)
        return generate_videos(pipe, r, clips, **inputs)[:, FRAMES]

    rows = {
        "fitted generator, true inputs": make(fitted),
        "fitted, no blurry video (α off)": make(fitted, blurry=None, recipe={"alpha_mode": "none"}),
        "fitted, no keyframe (SparseCtrl off)": make(fitted, keyframes=None, recipe={"use_keyframe": False}),
        'fitted, no caption (prompt "a smooth video")': make(
            fitted, captions=None, recipe={"use_caption": False}
        ),
        "fitted, another clip's inputs (shuffled)": make(
            fitted,
            blurry=blurry[shuffle],
            keyframes=keyframes[shuffle],
            captions=[captions[i] for i in shuffle],
        ),
        "random generator (pretrained=random), true inputs": make(random),
        "the blurry input itself": interpolate_frames(blurry, "reference")[:, FRAMES],
        "the keyframe repeated": keyframes[:, None].expand_as(truth),
        "mean training frame": resize(train.flatten(0, 1), 32).mean(0).expand_as(truth),
    }
    lines = [
        "<!-- generated table: start video -->",
        "# Fitted tiny video generator: does it use its inputs? (test clips, true inputs, scale=tiny)",
        "",
        f"Produced by `python experiments/simulated_benchmark/video_standin.py --clips {n}` from the fitted files in "
        f"`{args.standin_dir}`. {n} test clips; generated frames {FRAMES} of 16 against the 6 true frames at 32 px.",
        "",
        "| video | PixCorr | MSE |",
        "|---|---|---|",
        *[
            f"| {name} | {pixcorr(v, truth):.3f} | {float(F.mse_loss(v, truth)):.4f} |"
            for name, v in rows.items()
        ],
        "<!-- generated table: end video -->",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        from torchvision.utils import save_image

        out = Path(args.out)
        shown = [truth, *[rows[name] for name in list(rows)[:6]]]
        grid = torch.cat([torch.cat(list(v[:4].flatten(0, 1).clamp(0, 1)), dim=-1) for v in shown], dim=-2)
        save_image(grid, str(out.with_suffix(".png")))
        old = out.read_text() if out.exists() else ""
        reading = (
            old.split("<!-- generated table: end video -->", 1)[1].lstrip("\n") if "end video" in old else ""
        )
        out.write_text(text + ("\n" + reading if reading else ""))


if __name__ == "__main__":
    main()
