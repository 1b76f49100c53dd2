"""Faults at the runtime's edges: last.ckpt is the last epoch, NaN losses, locks, foreign checkpoints, orphan
temporary files, media of killed clips, read-only and full disks. Each: one sentence, exit 2, nothing partial."""

from __future__ import annotations

import contextlib
import csv
import subprocess
from pathlib import Path

import pytest
import torch

from tests.conftest import copy_runs, read_summary, run_cli, run_inprocess, start_cli, wait_while_running

RUN = "runs/default/subj1"


def _last_sentence(proc) -> str:
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("neuroclips: error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return lines[0]


def test_last_ckpt_is_the_last_epoch_even_when_the_monitor_never_improves(sim_file, tmp_path):
    # val/loss mostly falls, so with monitor_mode=max the best is an early epoch: last.ckpt must still be epoch 2
    run_inprocess(
        ["stage=toy_fit", "logger=none", "stage.max_epochs=3", "stage.monitor_mode=max"], tmp_path, sim_file
    )
    ckpts = tmp_path / RUN / "toy_fit/checkpoints"
    last = torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=True)
    best = torch.load(ckpts / "best.ckpt", map_location="cpu", weights_only=True)
    assert best["epoch"] < 2, "the test needs a best epoch before the last one"
    assert last["epoch"] == 2


def test_a_nan_loss_stops_the_fit_in_one_sentence_and_keeps_finite_checkpoints(sim_file, tmp_path):
    proc = run_inprocess(
        ["stage=toy_fit", "logger=none", "stage.max_epochs=3", "system.lr=1e30"],
        tmp_path,
        sim_file,
        check=False,
    )
    assert proc.returncode == 2
    err = _last_sentence(proc)
    assert "non-finite" in err and "epoch" in err and "step" in err, err
    assert not (tmp_path / RUN / "toy_fit/summary.json").exists(), "a diverged fit must not say it finished"
    for ckpt in (tmp_path / RUN / "toy_fit/checkpoints").glob("*.ckpt"):
        sd = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in sd.values()), ckpt


@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 100, "truncate", "foreign"])
def test_an_unreadable_or_foreign_last_ckpt_is_refused_in_one_sentence(
    sim_file, tmp_path, fitted_toy_runs, content
):
    copy_runs(fitted_toy_runs, tmp_path)
    last = tmp_path / RUN / "toy_fit/checkpoints/last.ckpt"
    (tmp_path / RUN / "toy_fit/summary.json").unlink()
    if content == "truncate":
        last.write_bytes(last.read_bytes()[:2000])
    elif content == "foreign":  # a checkpoint of another stage, with matching tensors
        ckpt = torch.load(last, map_location="cpu", weights_only=True)
        ckpt["neuroclips"]["stage"] = "sr"
        torch.save(ckpt, last)
    else:
        last.write_bytes(content)
    proc = run_inprocess(["stage=toy_fit", "logger=none"], tmp_path, sim_file, check=False)
    assert proc.returncode == 2
    err = _last_sentence(proc)
    assert str(last) in err and "resume=never" in err, err


def test_a_last_ckpt_whose_weights_do_not_fit_is_refused(sim_file, tmp_path, fitted_toy_runs):
    copy_runs(fitted_toy_runs, tmp_path)
    last = tmp_path / RUN / "toy_fit/checkpoints/last.ckpt"
    (tmp_path / RUN / "toy_fit/summary.json").unlink()
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    ckpt["state_dict"]["net.extra"] = torch.zeros(2)
    torch.save(ckpt, last)
    proc = run_inprocess(["stage=toy_fit", "logger=none"], tmp_path, sim_file, check=False)
    assert proc.returncode == 2 and "unexpected net.extra" in _last_sentence(proc)


def test_orphan_temporary_files_are_removed_at_the_next_start(sim_file, tmp_path, fitted_toy_runs):
    copy_runs(fitted_toy_runs, tmp_path)
    orphan = tmp_path / RUN / "toy_fit/checkpoints/.last.ckpt.ab12cd34.tmp"
    orphan.write_bytes(b"x" * 5000)
    keep = tmp_path / RUN / "toy_fit/notes.tmp"  # not an atomic write's temporary: never touched
    keep.write_text("mine")
    proc = run_inprocess(["stage=toy_fit", "logger=none"], tmp_path, sim_file)
    assert not orphan.exists() and keep.exists()
    assert "removed 1 temporary files of interrupted writes (5.0 kB)" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_a_second_run_into_a_locked_run_dir_is_refused_and_the_first_unharmed(sim_file, tmp_path):
    args = [
        "stage=toy_fit",
        "logger=csv",
        "stage.max_epochs=3",
        "+stage.callbacks.slow={_target_: tests.toy.system.SlowDown, seconds: 1.5}",  # outlives the second start
    ]
    first = start_cli(args, tmp_path, sim_file, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / RUN / "toy_fit/.lock"
    assert wait_while_running(first, lock.exists, timeout=120), "the first run never took the lock"
    # in process: a second CLI start pays its imports, and on a loaded machine the first run could end meanwhile
    second = run_inprocess(
        ["stage=toy_fit", "logger=csv", "stage.max_epochs=3"], tmp_path, sim_file, check=False
    )
    assert second.returncode == 2
    err = _last_sentence(second)
    assert f"pid {first.pid}" in err and "another run holds" in err, err
    out, err_first = first.communicate(timeout=300)
    assert first.returncode == 0, err_first[-3000:]
    assert read_summary(tmp_path, "toy_fit")["metrics"]["epochs"] == 3 and not lock.exists()
    for metrics in (tmp_path / RUN / "toy_fit").rglob("metrics.csv"):
        rows = list(csv.reader(metrics.open()))
        assert rows and all(len(r) == len(rows[0]) for r in rows), metrics


def test_media_missing_after_a_kill_are_written_on_resume_and_npy_comes_last(sim_file, tmp_path):
    run_inprocess(["stage=toy_video", "logger=none", "data.predict_clips=[0,1,2,3]"], tmp_path, sim_file)
    out = tmp_path / RUN / "outputs"
    for c in range(4):  # the writer runs after the media callback: the .npy that marks a clip done is last
        assert (out / f"media/video/{c:05d}.gif").stat().st_mtime_ns <= (
            out / f"video/{c:05d}.npy"
        ).stat().st_mtime_ns
    gif = out / "media/video/00002.gif"
    gif.unlink()  # what a kill between a clip's .npy and its GIF left under the old order
    others = {c: (out / f"video/{c:05d}.npy").stat().st_mtime_ns for c in (0, 1, 3)}
    run_inprocess(["stage=toy_video", "logger=none", "data.predict_clips=[0,1,2,3]"], tmp_path, sim_file)
    assert gif.exists()
    assert {c: (out / f"video/{c:05d}.npy").stat().st_mtime_ns for c in (0, 1, 3)} == others
    assert read_summary(tmp_path, "toy_video")["metrics"]["clips_written"] == 1


@contextlib.contextmanager
def _tmpfs(path: Path, options: str):
    """A small or read-only file system (we run as root, so chmod alone would not stop a write)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True, capture_output=True
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def _fit_on(fs: Path, tmp_path: Path, sim_file: Path) -> str:
    """toy_fit with its runs dir on the file system ``fs``: it must fail with exit 2 and one sentence."""
    proc = run_cli(
        ["stage=toy_fit", "logger=none"],
        tmp_path,
        sim_file,
        check=False,
        env={"NEUROCLIPS_RUNS_DIR": str(fs / "runs")},
    )
    assert proc.returncode == 2
    err = _last_sentence(proc)
    assert "paths.runs_dir" in err, err
    return err


def test_a_read_only_runs_dir_is_one_sentence_and_nothing_written(sim_file, tmp_path):
    with _tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        assert "cannot be written" in _fit_on(ro, tmp_path, sim_file)
        assert not any(ro.iterdir())


def test_a_full_disk_is_one_sentence_and_leaves_no_partial_file(sim_file, tmp_path):
    with _tmpfs(tmp_path / "small", "size=400k") as small:
        assert "no space left on the device" in _fit_on(small, tmp_path, sim_file)
        leftovers = [p for p in small.rglob("*") if p.name.endswith(".tmp")]
        assert not leftovers, leftovers
        for ckpt in small.rglob("*.ckpt"):
            torch.load(ckpt, map_location="cpu", weights_only=True)  # complete, or not there at all


@pytest.mark.slow
def test_kill_mid_epoch_then_resume_from_the_step_checkpoint_is_bit_identical(sim_file, tmp_path):
    common = [
        "stage=toy_fit",
        "deterministic=true",
        "stage.max_epochs=3",
        "logger=none",
        "+system.noise=0.5",
        "checkpoint.every_n_train_steps=2",
        "+stage.callbacks.slow={_target_: tests.toy.system.SlowDown, seconds: 0.3}",
    ]
    a = tmp_path / "a"
    run_cli(common, a, sim_file)
    ref = torch.load(a / RUN / "toy_fit/checkpoints/last.ckpt", map_location="cpu", weights_only=True)[
        "state_dict"
    ]

    b = tmp_path / "b"
    proc = start_cli(common, b, sim_file)
    last = b / RUN / "toy_fit/checkpoints/last.ckpt"
    steps_per_epoch = 7  # 108 training clips / batch 16
    killed_at = None

    def kill_inside_epoch_one() -> bool:
        nonlocal killed_at
        with contextlib.suppress(Exception):
            step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
            if step > steps_per_epoch and step % steps_per_epoch:  # a step checkpoint inside epoch 1
                proc.kill()
                killed_at = step
        return killed_at is not None

    wait_while_running(proc, kill_inside_epoch_one, timeout=300, every=0.05)
    proc.wait()
    assert killed_at is not None, "the run ended before it could be killed mid-epoch"
    out = run_cli([*common, "resume=must"], b, sim_file)
    assert f"after its first {killed_at - steps_per_epoch} batches" in out.stdout + out.stderr
    got = torch.load(last, map_location="cpu", weights_only=True)["state_dict"]
    assert read_summary(b, "toy_fit")["metrics"]["global_step"] == 3 * steps_per_epoch
    for k in ref:
        assert torch.equal(ref[k], got[k]), k


def test_a_value_that_names_no_option_is_one_sentence(tmp_path):
    proc = run_inprocess(["stage=sr", "stage.selection=foo", "dry_run=true"], tmp_path, check=False)
    assert proc.returncode == 2
    assert (
        "config key 'stage.monitor': Interpolation key 'selections.foo.monitor' not found"
        in _last_sentence(proc)
    )
    assert not (tmp_path / "runs").exists()
