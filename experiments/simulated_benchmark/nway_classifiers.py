"""Do the tiny N-way classifiers measure semantics? Fitted stand-ins (stage=standins) against the random ones, and the
fitting recipe of the stand-ins (additive head, flips and blurred batches) against the plain one it replaced.

Table 1 scores, on the test clips of a simulated data file, the N-way top-1 accuracy (the protocol the end-to-end
table uses: ``strict``, the ground truth's top class; 100 trials) of three "reconstructions" whose semantic content is
known: the ground truth itself (should win), the ground truth of other clips (shuffled; lower) and the mean training
frame (one picture for every clip: no content, so chance, 0.5 at 2-way, 0.02 at 50-way). A classifier that scores a
constant picture well leans towards the frequent classes, and its N-way numbers say little about a reconstruction.

Table 2 reads an independent simulated movie (another simulation seed: scenes no fit or choice has seen), sharp
and blurred (each frame shrunk to 8 px and enlarged back, the look of a blurry reconstruction): the fraction of clips
whose top class is right, and whose shape and colour are. The plain recipe (``head=full``, no vertical flip, no
blurred batches) is fitted here with the same seed, steps and data, into a scratch folder.

Usage (repo root, after `stage=standins` with scale.standins.classifiers.enabled=true, e.g. `make demo`):
  python experiments/simulated_benchmark/nway_classifiers.py --data-file data/simulated_tiny.h5 \
      --frame-dir data/standins/frame_classifier --video-dir data/standins/video_classifier
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import h5py
import numpy as np
import torch

INDEPENDENT_CLIPS = 1200
BLUR_SIZE = 8


def independent_movie(seed: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Uncut clips uint8 (N, 6, 3, size, size) and scene classes of a movie simulated with ``seed``."""
    from neuroclips.data.simulate import SimulationConfig
    from neuroclips.data.simulated_movie import COLOURS, make_movie
    from neuroclips.tasks.standin_classifiers import scene_classes

    defaults = SimulationConfig()
    movie = make_movie(
        INDEPENDENT_CLIPS, size, defaults.segment_len, defaults.mean_scene_frames, np.random.default_rng(seed)
    )
    keep = ~movie.scene_cut
    classes = scene_classes(movie.labels[keep], movie.colours[keep], len(COLOURS))
    return torch.from_numpy(movie.frames[keep]), torch.from_numpy(classes)


def fit_plain(data_file: str, frame_dir: str, scratch: str) -> tuple[str, str]:
    """The plain recipe's classifiers, fitted like the stand-ins (their marker's settings, seed and held-out rows)."""
    from neuroclips.data.sampler import validation_rows
    from neuroclips.tasks.standin_classifiers import TinyClassifierStandins

    settings = json.loads((Path(frame_dir) / "standin.json").read_text())["settings"]
    training = {**settings["training"], "head": "full", "vertical_flip": False, "blur_prob": 0.0}
    plain = TinyClassifierStandins(
        frame_dir=f"{scratch}/frame", video_dir=f"{scratch}/video", seed=settings["seed"], **training
    )
    with h5py.File(data_file, "r") as f:
        n_train = f["stimuli/train/frames"].shape[0]
    plain.fit_and_save(data_file, validation_rows(n_train, 0.1, 20, 0), {"scratch": True})
    return str(plain.frame_dir), str(plain.video_dir)


def accuracies(classifier, clips: torch.Tensor, classes: torch.Tensor, n_colours: int) -> list[float]:
    """Scene, shape and colour accuracy of the classifier's top class, sharp and blurred."""
    from neuroclips.tasks.standin_classifier_fit import blurred

    out = []
    for inputs in (clips, blurred(clips, BLUR_SIZE)):
        top = torch.cat([classifier(batch).argmax(-1) for batch in inputs.split(256)])
        out += [
            float((top == classes).float().mean()),
            float((top // n_colours == classes // n_colours).float().mean()),
            float((top % n_colours == classes % n_colours).float().mean()),
        ]
    return out


def main() -> None:
    from neuroclips.data.sampler import validation_rows
    from neuroclips.data.simulated_movie import COLOURS
    from neuroclips.metrics.nway import nway_topk
    from neuroclips.models.frozen_classifiers import build_frame_classifier, build_video_classifier

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-file", default="data/simulated_tiny.h5")
    parser.add_argument("--frame-dir", default="data/standins/frame_classifier")
    parser.add_argument("--video-dir", default="data/standins/video_classifier")
    parser.add_argument("--independent-seed", type=int, default=7, help="simulation seed of table 2's movie")
    parser.add_argument("--out", default="experiments/simulated_benchmark/nway_classifiers.md")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the stand-ins are fitted with one thread each (tasks/standin_jobs.py)

    with h5py.File(args.data_file, "r") as f:
        test = torch.from_numpy(f["stimuli/test/frames"][:])
        frames = f["stimuli/train/frames"]
        train = np.setdiff1d(np.arange(frames.shape[0]), validation_rows(frames.shape[0], 0.1, 20, 0))
        mean = frames[np.sort(train)].astype(np.float64).mean(axis=(0, 1))
    mean = torch.from_numpy(np.rint(mean).astype(np.uint8))
    perm = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))
    scratch = tempfile.TemporaryDirectory(prefix="nway_plain_")
    plain_frame, plain_video = fit_plain(args.data_file, args.frame_dir, scratch.name)
    load_frame = lambda path: build_frame_classifier(source="local", path=path)  # noqa: E731
    load_video = lambda path: build_video_classifier(source="local", path=path)  # noqa: E731
    models = {
        "frame, fitted stand-in": (load_frame(args.frame_dir), True),
        "frame, plain recipe (head=full, no vertical flip or blur)": (load_frame(plain_frame), True),
        "frame, random tiny": (build_frame_classifier(source="tiny"), True),
        "video, fitted stand-in": (load_video(args.video_dir), False),
        "video, plain recipe (head=full, no vertical flip or blur)": (load_video(plain_video), False),
        "video, random tiny": (build_video_classifier(source="tiny"), False),
    }
    rows = []
    for name, (classifier, per_frame) in models.items():
        truth = test[:, 2] if per_frame else test
        gt_logits = classifier(truth)
        cells = []
        for what in ("truth", "shuffled", "mean"):
            recon = {"truth": truth, "shuffled": truth[perm], "mean": mean.expand_as(truth).contiguous()}[
                what
            ]
            logits = classifier(recon)
            cells += [
                f"{nway_topk(gt_logits, logits, n_way=n, top_k=1, num_trials=100, protocol='strict', rng=0).mean:.3f}"
                for n in (2, 50)
            ]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    clips, classes = independent_movie(args.independent_seed, test.shape[-1])
    accuracy_rows = []
    for name, (classifier, per_frame) in models.items():
        if "random" in name:
            continue
        inputs = clips[:, 2] if per_frame else clips
        cells = accuracies(classifier, inputs, classes, len(COLOURS))
        accuracy_rows.append(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    fits = {
        k: json.loads((Path(d) / "standin.json").read_text())
        for k, d in (("frame", args.frame_dir), ("video", args.video_dir))
    }
    training = fits["video"]["settings"]["training"]
    lines = [
        "# Do the tiny N-way classifiers measure semantics? (simulated clips)",
        "",
        f"Table 1: the {len(test)} test clips of `{args.data_file}`; N-way top-1, `strict` protocol (the ground "
        "truth's top class, as in end_to_end.md), 100 trials. The ground truth should win; another clip's ground "
        "truth (shuffled) should score lower, the mean training frame (no content) at chance (0.5 and 0.02).",
        "",
        "| classifier | truth 2-way | truth 50-way | shuffled truth 2-way | shuffled truth 50-way | mean frame 2-way "
        "| mean frame 50-way |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Table 2: {len(clips)} uncut clips of an independent simulated movie (simulation seed "
        f"{args.independent_seed}, scenes no fit has seen; the frame classifiers read frame 2): the fraction whose "
        f"top class is right (scene = shape × colour, chance 1/64), and whose shape (chance 1/8) and colour (1/8) "
        f"are; sharp, and blurred (each frame shrunk to {BLUR_SIZE} px and enlarged back).",
        "",
        "| classifier | sharp: scene | sharp: shape | sharp: colour | blurred: scene | blurred: shape "
        "| blurred: colour |",
        "|---|---|---|---|---|---|---|",
        *accuracy_rows,
        "",
        f"Fitted stand-ins (`stage=standins`, training clips only, 64 scene classes = shape × colour; recipe "
        f"`train.standins.classifiers`: {training}, seed {fits['video']['settings']['seed']}): held-out "
        f"(validation) accuracy, frame ViT {fits['frame']['fit']['val_accuracy']:.2f}, video VideoMAE "
        f"{fits['video']['fit']['val_accuracy']:.2f}. The plain recipe is the same fit with `head=full`, "
        "`vertical_flip=false`, `blur_prob=0`.",
        "",
        f"Command: `python experiments/simulated_benchmark/nway_classifiers.py --data-file {args.data_file} "
        f"--frame-dir {args.frame_dir} --video-dir {args.video_dir}`",
        "",
    ]
    from generated_block import write_block

    write_block(Path(args.out), "nway_classifiers", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
