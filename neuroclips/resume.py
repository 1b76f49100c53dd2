"""Resume, skip and refuse: where a fit stage continues, and which clips a predict stage still has to write.

Fit stages: ``last.ckpt`` is checked as strictly as an ``init`` checkpoint. ``resume=auto`` continues from ``<run_dir>/checkpoints/last.ckpt`` only when that file is a readable neuroclips
checkpoint of this stage and subject, made under the same fingerprint (neuroclips.provenance), whose weights are
exactly the trainable (non-frozen) weights of the system now built. Anything else stops the stage with one
sentence naming what differs and the way out (``name=...`` for a new run, ``resume=never`` to start over here).
A run whose last checkpoint is past ``max_epochs`` and whose finished summary has the same fingerprint is not
trained again (``ResumePoint.finished``).

Predict stages: the clips whose outputs are missing or were made under another fingerprint (``clips_to_do``); the
latter are refused unless ``outputs=overwrite``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from neuroclips.checkpoints import CheckpointMismatchError, check_metadata, load_lightning_checkpoint
from neuroclips.errors import StageError
from neuroclips.outputs import OutputStore
from neuroclips.provenance import Provenance, describe_difference, upstream_summary

log = logging.getLogger("neuroclips")

RESUME_MODES = ("auto", "never", "must")
WAY_OUT = "pass name=<new name> for a new run, or resume=never to start this run over"


def last_checkpoint(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "last.ckpt"


def read_last(path: Path) -> dict:
    """Read a resume checkpoint memory-mapped (the weights are read only when Lightning loads them)."""
    try:
        ckpt = load_lightning_checkpoint(path, mmap=True)
    except Exception as e:  # noqa: BLE001 - truncated, random or foreign file
        raise StageError(
            f"{path}: cannot be read as a neuroclips checkpoint ({type(e).__name__}); move it away, or pass "
            f"resume=never to start this run over."
        ) from e
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise StageError(
            f"{path}: not a Lightning checkpoint (expected a dict with 'state_dict'); move it away, or "
            f"pass resume=never to start this run over."
        )
    return ckpt


def next_epoch(ckpt: dict) -> int:
    """The epoch a fit resumed from ``ckpt`` starts with (processed epochs in the fit loop progress)."""
    try:
        return int(ckpt["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError):
        return int(ckpt.get("epoch", -1)) + 1


def mid_epoch_batches(ckpt: dict) -> int:
    """Batches of the unfinished epoch a checkpoint saved every N steps has done (0: saved at an epoch's end)."""
    try:
        progress = ckpt["loops"]["fit_loop"]["epoch_loop.batch_progress"]
        return 0 if progress["is_last_batch"] else int(progress["current"]["processed"])
    except (KeyError, TypeError):
        return 0


def check_weights(path: Path, ckpt: dict, system: nn.Module, frozen: tuple[str, ...]) -> None:
    """The checkpoint's weights are exactly the system's trainable ones (names and shapes): strict, as for init."""
    expected = {k: tuple(v.shape) for k, v in system.state_dict().items() if not k.startswith(frozen)}
    found = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items()}
    missing, unexpected = sorted(expected.keys() - found.keys()), sorted(found.keys() - expected.keys())
    if missing or unexpected:
        what = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise StageError(
            f"{path}: the checkpoint's weights do not fit this stage's nets ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, e.g. {what}); {WAY_OUT}."
        )
    wrong = [k for k in expected if expected[k] != found[k]]
    if wrong:
        k = wrong[0]
        raise StageError(f"{path}: weight {k} expected shape {expected[k]}, found {found[k]}; {WAY_OUT}.")


def resume_checkpoint(
    run_dir: Path,
    mode: str,
    stage: str,
    subj: int,
    prov: Provenance,
    system: nn.Module,
    frozen: tuple[str, ...],
) -> tuple[str | None, dict | None]:
    """The checkpoint to resume from (or None) and its contents, after every check; raises StageError."""
    last = last_checkpoint(run_dir)
    if mode == "never":
        return None, None
    if not last.exists():
        if mode == "must":
            raise StageError(f"{last}: resume=must but no last checkpoint exists in the run directory.")
        return None, None
    ckpt = read_last(last)
    try:
        metadata = check_metadata(last, ckpt, stage, subj)
    except CheckpointMismatchError as e:
        raise StageError(f"{e} ({WAY_OUT})") from e
    if metadata.get("fingerprint") != prov.fingerprint:
        old = {"fingerprint": metadata.get("fingerprint"), **(metadata.get("provenance") or {})}
        raise StageError(
            f"{run_dir}: the run there was made under another configuration "
            f"({describe_difference(old, prov) or 'no fingerprint recorded'}); {WAY_OUT}."
        )
    check_weights(last, ckpt, system, frozen)
    return str(last), ckpt


@dataclass
class ResumePoint:
    """Where a fit continues: ``ckpt_path`` for ``trainer.fit`` (None: from scratch), the first epoch, the batches
    of that epoch already done (a checkpoint saved every N steps) with every rank's RNG state then; ``finished``:
    the summary of a run that already ran all its epochs under this fingerprint (nothing to train)."""

    ckpt_path: str | None = None
    epoch: int = 0
    done_batches: int = 0
    rng_states: object = None
    finished: dict | None = None


def previous_summary(run_dir: Path) -> dict | None:
    """The summary of a finished earlier run in ``run_dir`` (None if none, or it did not finish)."""
    summary = upstream_summary(run_dir.parent, run_dir.name)
    return summary if summary and summary.get("status") == "finished" else None


def resume_point(
    run_dir: Path,
    mode: str,
    stage: str,
    subj,
    prov: Provenance,
    system: nn.Module,
    frozen: tuple[str, ...],
    max_epochs: int,
) -> ResumePoint:
    """Where the fit of ``system`` in ``run_dir`` continues, after every check of ``resume_checkpoint``."""
    resume, ckpt = resume_checkpoint(run_dir, mode, stage, subj, prov, system, frozen)
    start_epoch = next_epoch(ckpt) if ckpt is not None else 0
    done_batches = mid_epoch_batches(ckpt) if ckpt is not None else 0
    rng_states = ckpt.get("neuroclips_rng") if done_batches else None
    # the summary is read only for a checkpoint that already ran every epoch
    previous = previous_summary(run_dir) if ckpt is not None and start_epoch >= max_epochs else None
    if previous and previous.get("fingerprint") == prov.fingerprint:
        log.info(
            "%s: already finished (%d epochs, fingerprint %s); nothing to train",
            run_dir,
            start_epoch,
            prov.fingerprint,
        )
        return ResumePoint(resume, start_epoch, done_batches, rng_states, finished=previous)
    return ResumePoint(resume, start_epoch, done_batches, rng_states)


def stale_sentence(
    store: OutputStore, kinds: list[str], stale: list[int], total: int, prov: Provenance, run_dir: Path
) -> str:
    """The refusal of a predict stage whose outputs of ``stale`` clips were made under another configuration."""
    old = store.fingerprint(kinds[0], stale[0])
    previous = upstream_summary(run_dir.parent, run_dir.name) or {}
    why = ""
    if previous.get("fingerprint") == old and previous.get("provenance"):
        why = f" ({describe_difference(previous['provenance'], prov)})"
    return (
        f"{store.root}: {len(stale)} of {total} clips of {kinds} were made under another configuration{why}; pass "
        f"outputs=overwrite to recompute exactly those clips, or name=<new name> for a new run."
    )


def clips_to_do(
    store: OutputStore,
    kinds: list[str],
    clips: list[int],
    prov: Provenance,
    callbacks: list,
    overwrite: bool,
    run_dir: Path,
) -> tuple[list[int], list[int]]:
    """The clips a predict stage (re)writes, sorted, and the stale ones among them; refuses stale clips unless
    ``overwrite``. A callback with ``missing(clips)`` (e.g. the media writer) adds the clips it lacks."""
    missing, stale = store.classify(kinds, clips, prov.fingerprint)
    for cb in callbacks:  # e.g. the media writer: a clip whose GIF is missing is not done
        if hasattr(cb, "missing"):
            missing = sorted(set(missing) | (set(cb.missing(clips)) - set(stale)))
    if stale and not overwrite:
        raise StageError(stale_sentence(store, kinds, stale, len(clips), prov, run_dir))
    return sorted(set(missing) | set(stale)), stale
