"""Stand-in fits side by side (neuroclips/tasks/standin_jobs.py): each fit in its own process, results by key, a
failed fit named, the others finished."""

from __future__ import annotations

import os

import pytest
import torch

from neuroclips.tasks.standin_jobs import YIELD_NICENESS, FitJob, run_fit_jobs


def report(name: str) -> dict:
    """A fit stand-in: who ran it, with how many threads, at which CPU priority."""
    return {"name": name, "pid": os.getpid(), "threads": torch.get_num_threads(), "nice": os.nice(0)}


def touch(path: str) -> dict:
    with open(path, "w") as f:
        f.write("fitted")
    return {}


def fail(name: str) -> dict:
    raise ValueError(f"{name} could not be fitted")


def test_fits_run_in_worker_processes_with_their_share_of_threads(monkeypatch):
    monkeypatch.setattr("neuroclips.tasks.standin_jobs.available_cpus", lambda: 2)
    jobs = [FitJob(k, report, (k,), cost) for k, cost in (("tiny_vae", 75), ("video", 350), ("unclip", 310))]
    results = run_fit_jobs(jobs, workers=None)
    assert list(results) == ["tiny_vae", "video", "unclip"]  # the jobs' order, whatever ran first
    assert all(results[k]["name"] == k for k in results)
    assert all(r["pid"] != os.getpid() and r["threads"] == 1 for r in results.values())
    # the longest fit at this process's priority, the others yield (YIELD_NICENESS)
    assert results["video"]["nice"] == os.nice(0)
    assert results["unclip"]["nice"] == results["tiny_vae"]["nice"] == os.nice(0) + YIELD_NICENESS


def test_one_worker_fits_in_this_process():
    results = run_fit_jobs([FitJob("a", report, ("a",), 1), FitJob("b", report, ("b",), 2)], workers=1)
    assert [r["pid"] for r in results.values()] == [os.getpid(), os.getpid()]


def test_every_fit_gets_the_same_threads_however_many_run_beside_it(monkeypatch):
    """A fit's numbers depend on its thread count: a stand-in refitted alone must get the threads it had beside
    the others, on a machine with more cores too, and this process gets its own threads back."""
    monkeypatch.setattr("neuroclips.tasks.standin_jobs.available_cpus", lambda: 4)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        side_by_side = run_fit_jobs([FitJob("a", report, ("a",), 1), FitJob("b", report, ("b",), 2)], None)
        alone = run_fit_jobs([FitJob("a", report, ("a",), 1)], workers=None)
        assert [r["threads"] for r in side_by_side.values()] == [1, 1]
        assert alone["a"]["threads"] == 1 and alone["a"]["pid"] == os.getpid()
        assert torch.get_num_threads() == 2
        shared = run_fit_jobs([FitJob("a", report, ("a",), 1), FitJob("b", report, ("b",), 2)], None, None)
        assert [r["threads"] for r in shared.values()] == [2, 2]  # threads_per_fit=None: cpus / processes
    finally:
        torch.set_num_threads(before)


def test_a_failed_fit_is_named_and_the_other_fits_finish(monkeypatch, tmp_path):
    monkeypatch.setattr("neuroclips.tasks.standin_jobs.available_cpus", lambda: 2)
    done = tmp_path / "unclip.done"
    jobs = [FitJob("video", fail, ("video",), 350), FitJob("unclip", touch, (str(done),), 310)]
    with pytest.raises(RuntimeError, match="the video fit failed: video could not be fitted"):
        run_fit_jobs(jobs, workers=2)
    assert done.read_text() == "fitted"


def test_a_generator_fitted_for_another_tiny_architecture_is_refitted_not_reused(tmp_path, monkeypatch):
    """The markers record the tiny nets' configs: after an architecture change (f2 -> f4 VAE, 2026-12-07) the old
    files are not 'up to date' (the strict loader would refuse them one stage later)."""
    from neuroclips.models.unclip_generator import UNCLIP_CONFIGS
    from neuroclips.models.video_generator_configs import VIDEO_CONFIGS
    from neuroclips.tasks.standin_generator_vae import GeneratorVaeStandin
    from neuroclips.tasks.standin_marker import write_marker
    from neuroclips.tasks.standin_unclip import TinyUnclipStandin
    from neuroclips.tasks.standin_video import FILE_FIELDS, TinyVideoStandin

    fingerprint = {"frames_sha1": "abc"}
    shared = GeneratorVaeStandin(out_dir=str(tmp_path / "generator_vae"))
    video = TinyVideoStandin(
        files={f: str(tmp_path / "video" / f"{f}.safetensors") for f in FILE_FIELDS}, vae=shared
    )
    unclip = TinyUnclipStandin(
        out_file=str(tmp_path / "unclip" / "unclip6_tiny.safetensors"), clip_encoder=None, vae=shared
    )
    for standin, files in ((video, list(video.files().values())), (unclip, [str(unclip.out_file)])):
        folder = tmp_path / ("video" if standin is video else "unclip")
        folder.mkdir()
        for f in files:
            open(f, "wb").close()
        write_marker(folder, {"fingerprint": fingerprint, "settings": standin.settings()})
    assert video.is_current(fingerprint) and unclip.is_current(fingerprint)
    shared.training["steps"] = 7  # the shared VAE's recipe is part of both generators' settings
    assert not video.is_current(fingerprint) and not unclip.is_current(fingerprint)
    shared.training.pop("steps")
    assert video.is_current(fingerprint) and unclip.is_current(fingerprint)
    monkeypatch.setitem(VIDEO_CONFIGS["tiny"]["vae"], "block_out_channels", [16, 32])
    monkeypatch.setitem(UNCLIP_CONFIGS["tiny"]["vae"], "block_out_channels", [16, 32])
    assert not video.is_current(fingerprint) and not unclip.is_current(fingerprint)
