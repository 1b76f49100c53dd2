"""Run the stand-in fits of `stage=standins` side by side, one process per fit (tasks/standins.py).

Why: the tiny nets are too small for a second intra-op thread to help much. On the 2-core demo machine a video-UNet
step takes 0.19 s with 1 thread and 0.16 s with 2, and two 1-thread fits side by side still take 0.17 s a step
each: 1.9 times the steps per second (the unCLIP UNet: 1.8 times; experiments/benchmarks/standin_parallel.md). So
the fits (VAE, classifiers, captioner, unCLIP, video generator; independent of each other, each with its own seed)
run in `workers` processes, longest first, instead of one after another. A fit's numbers depend on its thread count
(float sums in another order), so every fit runs with the same `threads_per_fit` (1 by default) however many fits
run beside it: a stand-in refitted alone (say, after its folder was deleted) equals the one the full stage made
(with cpus/workers threads a lone classifier refit got 2 threads and other N-way numbers).

Every fit writes its files atomically and only from its own process; a failed fit raises here with its
traceback, after the others have finished (their complete files stay and are re-used by the next run).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import torch

log = logging.getLogger("neuroclips")

# Every fit but the longest runs at this lower CPU priority (nice). Alone on the machine it changes nothing (one
# process per core); beside other work (the pipeline runs stage=generators beside sr..blurry, 3 processes on 2 cores)
# the shorter fit yields, so that the longest one and the foreground stages, which take about as long as each other,
# end together instead of the longest fit running on alone at the end. Measured in the demo (README, 2026-12-07):
# even shares left a one-core tail of the video fit; +3 makes the unCLIP fit take the leftover CPU.
YIELD_NICENESS = 3


@dataclass
class FitJob:
    key: str  # the metrics key (tiny_vae, classifiers, captioner, unclip, video)
    fit: Callable[..., dict]  # picklable: a bound method of a stand-in object
    args: tuple
    cost: float  # relative expected duration, for longest-first ordering


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_fit_jobs(jobs: list[FitJob], workers: int | None, threads_per_fit: int | None = 1) -> dict[str, dict]:
    """{key: the fit's metrics}. ``workers``: processes (None: as many as CPUs and jobs allow; 1: in this
    process, one after another). ``threads_per_fit``: each fit's threads (None: the CPUs shared among the
    processes, or this process's threads; then a fit's numbers depend on what ran beside it)."""
    cpus = available_cpus()
    count = min(len(jobs), cpus if workers is None else int(workers))
    if count <= 1:
        before = torch.get_num_threads()
        torch.set_num_threads(int(threads_per_fit or before))
        try:
            return {job.key: job.fit(*job.args) for job in jobs}
        finally:
            torch.set_num_threads(before)
    threads = int(threads_per_fit or max(1, cpus // count))
    ordered = sorted(jobs, key=lambda job: -job.cost)
    log.info(
        "standins: %d fits in %d processes of %d thread(s): %s",
        len(jobs),
        count,
        threads,
        ", ".join(job.key for job in ordered),
    )
    handlers = log_targets()
    results, errors = {}, []
    with ProcessPoolExecutor(max_workers=count, mp_context=get_context("spawn")) as pool:
        base = os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else 0
        futures = {
            job.key: pool.submit(run_in_worker, job, threads, handlers, base + (YIELD_NICENESS if i else 0))
            for i, job in enumerate(ordered)
        }
        for key, future in futures.items():
            try:
                results[key] = future.result()
            except Exception as error:  # noqa: BLE001 - re-raised below once every fit has ended
                errors.append((key, error))
    if errors:
        key, error = errors[0]
        raise RuntimeError(f"standins: the {key} fit failed: {error}") from error
    return {job.key: results[job.key] for job in jobs}


def log_targets() -> tuple[list[str], str]:
    """The log files of this process's root logger and its line format, for the worker processes."""
    files, fmt = [], "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            files.append(handler.baseFilename)
        if handler.formatter is not None and handler.formatter._fmt:
            fmt = handler.formatter._fmt
    return files, fmt


def run_in_worker(job: FitJob, threads: int, handlers: tuple[list[str], str], niceness: int) -> dict:
    files, fmt = handlers
    logging.basicConfig(  # each line names its fit: two fits log "tiny VAE step ..." at once
        level=logging.INFO,
        format=fmt.replace("%(message)s", f"[{job.key}] %(message)s"),
        handlers=[logging.StreamHandler(), *(logging.FileHandler(f, mode="a") for f in files)],
        force=True,
    )
    torch.set_num_threads(threads)
    set_niceness(niceness)
    return job.fit(*job.args)


def set_niceness(value: int) -> None:
    """This process's CPU priority (nice value, absolute). Only the first fit, the longest, asks for the pool's own
    priority, and it starts in a fresh worker, so an unprivileged worker never needs to raise it back."""
    if not hasattr(os, "setpriority"):  # not POSIX
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, value)
    except PermissionError:
        pass
