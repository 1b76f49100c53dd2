"""Resume, skip and refuse for fit stages: ``last.ckpt`` is checked as strictly as an ``init`` checkpoint.

``resume=auto`` continues from ``<run_dir>/checkpoints/last.ckpt`` only when that file is a readable neuroclips
checkpoint of this stage and subject, made under the same fingerprint (neuroclips.provenance), whose weights are
exactly the trainable (non-frozen) weights of the system now built. Anything else stops the stage with one
sentence naming what differs and the way out (``name=...`` for a new run, ``resume=never`` to start over here).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from neuroclips.checkpoints import CheckpointMismatchError, check_metadata
from neuroclips.errors import StageError
from neuroclips.provenance import Provenance, describe_difference

RESUME_MODES = ("auto", "never", "must")
WAY_OUT = "pass name=<new name> for a new run, or resume=never to start this run over"


def last_checkpoint(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "last.ckpt"


def read_last(path: Path) -> dict:
    """Read a resume checkpoint memory-mapped (the weights are read only when Lightning loads them)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
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
