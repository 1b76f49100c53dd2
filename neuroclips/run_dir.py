"""A run's directory for the span of its run: created with its parents, locked (one run per run dir), and, when
the run is refused or fails, the folders it created removed again (no empty folders left behind)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from neuroclips.run_setup import make_run_dir
from neuroclips.utils.run_lock import acquire_run_lock


@contextlib.contextmanager
def locked_run_dir(run_dir: Path) -> Iterator[Path]:
    created = [d for d in (run_dir, *run_dir.parents) if not d.exists()]
    make_run_dir(run_dir)
    lock = acquire_run_lock(
        run_dir
    )  # one run per run dir; DDP ranks and stage subprocesses share their launch's
    failed = True
    try:
        yield run_dir
        failed = False
    finally:
        lock.release()
        for d in created if failed else []:  # a refused run leaves no empty folders behind either
            with contextlib.suppress(OSError):
                d.rmdir()
