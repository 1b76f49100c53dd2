"""Stage eval end to end on a small simulated file: our outputs store in-process, a foreign folder from the CLI."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from neuroclips.data.simulate import config_for, simulate
from neuroclips.outputs import OutputStore
from neuroclips.tasks.eval import EvalTask

REPO = Path(__file__).resolve().parents[1]
TINY_MODELS = {
    "frame_classifier": {"source": "tiny"},
    "video_classifier": {"source": "tiny", "num_frames": 6},
    "clip": {"adjacent": {"source": "tiny", "arch": "tiny"}, "all_pairs": {"source": "tiny", "arch": "tiny"}},
}


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sim") / "sim.h5"
    simulate(
        path,
        config_for("tiny", n_train=20, n_test=8, image_size=32, subjects=(1,), segment_len=4),
        progress=False,
    )
    with h5py.File(path, "a") as f:  # a cached keyframe-token target, for the retrieval check
        tokens = np.random.default_rng(0).normal(size=(8, 1, 4, 16)).astype(np.float16)
        d = f.create_dataset("targets/clip_tokens/test", data=tokens)
        d.attrs["frame_indices"] = [2]
    return path


def _gt(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["stimuli/test/frames"][:]


def _ctx(sim_file: Path, run_dir: Path):
    return SimpleNamespace(
        run_dir=run_dir,
        data_file=str(sim_file),
        subj=1,
        scale="tiny",
        device=torch.device("cpu"),
        is_global_zero=True,
    )


def test_perfect_store_outputs_score_perfectly(sim_file, tmp_path):
    gt = _gt(sim_file)
    store = OutputStore(tmp_path / "outputs")
    with h5py.File(sim_file, "r") as f:
        tokens = f["targets/clip_tokens/test"][:, 0]
    for c, clip in enumerate(gt):
        video = np.zeros((16, *clip.shape[1:]), np.uint8)
        video[[4, 6, 8, 10, 12, 14]] = clip
        store.save("video", c, video, {"seed": c})
        store.save("blurry", c, clip, {"seed": c})
        store.save("keyframe", c, clip[2], {"seed": c})
        store.save("clip_voxels", c, tokens[c], {"seed": c})
    task = EvalTask(
        source=str(tmp_path / "outputs"),
        models=TINY_MODELS,
        nway={"num_trials": 10, "seed": 0},
        report={"clips": 3, "combine_subjects": False},
    )
    result = task.run(_ctx(sim_file, tmp_path / "eval"))
    doc = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    for kind in ("video", "blurry", "keyframe"):
        m = doc["kinds"][kind]["metrics"]
        assert m["ssim_rgb255"]["value"] == pytest.approx(1.0) and m["ssim_gray_gauss"][
            "value"
        ] == pytest.approx(1.0)
        assert m["psnr_mind_animator"]["value"] == 100.0 and m["pixcorr"]["value"] == pytest.approx(1.0)
        assert m["frame_2way_mindvideo"]["value"] == 1.0 and m["frame_50way_strict"]["value"] == 1.0
    assert doc["kinds"]["video"]["metrics"]["video_50way_strict"]["value"] == 1.0
    assert "frames [4, 6, 8, 10, 12, 14] of 16" in doc["kinds"]["video"]["frame_selection"]
    assert "video_2way_mindvideo" not in doc["kinds"]["keyframe"]["metrics"]  # one image: frame-level only
    assert doc["retrieval"]["forward"] == 1.0 and doc["retrieval"]["backward"] == 1.0
    assert result.metrics["video/ssim_rgb255"] == pytest.approx(1.0)
    html = (tmp_path / "eval" / "report.html").read_text()
    # simulated ground truth: the paper's cc2017 rows are not put beside ours (tests/test_report_layout.py)
    assert html.count("data:image/gif;base64,") >= 9 and "NeuroClips avg (paper)" not in html
    md = (tmp_path / "eval" / "metrics.md").read_text()
    assert "protocol mindvideo (3 GT classes)" in md and "| MinD-Video 2023 (paper) |" not in md
    assert "not comparable" in md
    rows = list(csv.DictReader(open(tmp_path / "eval" / "per_clip.csv")))
    assert len(rows) == 3 * len(gt) and {r["kind"] for r in rows} == {"video", "blurry", "keyframe"}


def test_missing_reconstructions_fail_with_a_clear_sentence(sim_file, tmp_path):
    (tmp_path / "empty").mkdir()
    task = EvalTask(source=str(tmp_path / "empty"), models=TINY_MODELS)
    with pytest.raises(ValueError, match="no reconstructions found for kinds"):
        task.run(_ctx(sim_file, tmp_path / "eval"))


def test_cli_scores_a_foreign_folder_of_gifs(sim_file, tmp_path):
    gt = _gt(sim_file)
    foreign = tmp_path / "other_tool"
    foreign.mkdir()
    rng = np.random.default_rng(0)
    for c, clip in enumerate(gt):  # another tool's output: test1.gif .. test8.gif, 6 frames, channel-last
        noisy = np.clip(clip.astype(int) + rng.integers(-20, 20, clip.shape), 0, 255).astype(np.uint8)
        ims = [Image.fromarray(f.transpose(1, 2, 0)) for f in noisy]
        ims[0].save(foreign / f"test{c + 1}.gif", save_all=True, append_images=ims[1:], duration=333, loop=0)
    out = tmp_path / "scored"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "neuroclips.evaluate",
        f"source={foreign}",
        f"gt={sim_file}",
        f"out={out}",
        "index_base=1",
        "scale=tiny",
        "task.nway.num_trials=5",
        "task.report.clips=2",
        "logger=none",
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((out / "metrics.json").read_text())
    assert list(doc["kinds"]) == ["video", "blurry", "keyframe"] and doc["kinds"]["video"]["n_clips"] == len(
        gt
    )
    assert "skipped" in doc["kinds"]["blurry"]
    assert 0.3 < doc["kinds"]["video"]["metrics"]["ssim_rgb255"]["value"] < 1.0
    assert (out / "report.html").exists() and (out / "summary.json").exists()


def test_report_tables_label_every_number_and_average_subjects():
    from neuroclips.report import render_markdown

    def doc(subj: int, ssim_value: float) -> dict:
        m = {
            "ssim_rgb255": {"value": ssim_value, "std": 0.1, "n": 3, "label": "SSIM rgb255, frames as given"}
        }
        return {
            "subject": subj,
            "scale": "tiny",
            "split": "test",
            "source": "x",
            "layout": "auto",
            "data_file": "d",
            "frame_indices": [4, 6, 8, 10, 12, 14],
            "keyframe_gt_index": 2,
            "drop_scene_cuts": False,
            "nway": {
                "protocols": ["mindvideo"],
                "n_ways": [2],
                "top_k": 1,
                "num_trials": 5,
                "seed": 0,
                "sampler": "reference",
            },
            "models": {},
            "kinds": {"video": {"n_clips": 3, "frame_selection": "6 frames as given", "metrics": m}},
        }

    md = render_markdown(doc(1, 0.2), subject_docs=[doc(2, 0.4), doc(1, 0.2)])
    assert "| ssim_rgb255 | 0.200 | 0.400 | 0.300 |" in md  # subjects sorted, then their mean
    assert "SSIM rgb255, frames as given" in md and "| NeuroClips avg (paper) | 0.834 ± 0.030 |" in md
