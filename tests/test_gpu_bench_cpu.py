"""The GPU benchmark script's CPU path at tiny scale (the GPU numbers come from running it on a GPU machine)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_bench_gpu_runs_on_cpu_at_tiny_scale(tmp_path):
    out, table = tmp_path / "r.json", tmp_path / "r.md"
    env_cmd = [
        sys.executable,
        "experiments/benchmarks/gpu/bench_gpu.py",
        "--device",
        "cpu",
        "--scale",
        "tiny",
        "--quick",
        "--keyframe-batches",
        "1",
        "2",
        "--video-batches",
        "1",
        "2",
        "--out",
        str(out),
        "--table",
        str(table),
    ]
    proc = subprocess.run(
        env_cmd,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        env={
            "PATH": "/usr/bin:/bin",
            "HF_HUB_OFFLINE": "1",
            "WANDB_MODE": "disabled",
            "OMP_NUM_THREADS": "1",
            "NEUROCLIPS_DATA_DIR": str(tmp_path / "data"),
            "PYTHONPATH": str(REPO),
            "HOME": str(tmp_path),
        },
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    r = json.loads(out.read_text())
    assert {(x["stage"], x["recipe"]) for x in r["train"]} == {
        ("sr", "reference"),
        ("sr", "ours"),
        ("pr", "reference"),
        ("pr", "ours"),
    }
    assert all(x["s_per_step"] > 0 for x in r["train"])
    gen = {(x["part"], x["recipe"], x["batch"]) for x in r["generation"]}
    assert gen == {
        ("keyframe", "reference", 1),
        ("keyframe", "ours", 1),
        ("keyframe", "ours", 2),
        ("video", "reference", 1),
        ("video", "ours", 1),
        ("video", "ours", 2),
    }
    # same clip, same seed: eager fp32 and SDPA fp32 agree on CPU
    assert all(x["max_abs_diff_vs_reference"] < 1e-3 for x in r["generation"])
    assert "| keyframe | ours | 2 |" in table.read_text()
