"""Evaluate any folder of reconstructions: ``python -m neuroclips.evaluate source=DIR [gt=FILE.h5] [out=DIR] ...``.

A thin front door to ``stage=eval`` (same config, same runtime). Short keys:

* ``source=DIR``   reconstructions (``task.source``): our outputs store or a foreign folder (readers.py layouts);
* ``gt=FILE``      the HDF5 file with the ground truth (``data.file``); not needed for ``layout=side_by_side``;
* ``out=DIR``      where metrics.json / metrics.md / report.html go (``paths.run_dir``);
* ``layout=``, ``kinds=``, ``index_base=``, ``frame_indices=``, ``eval_size=``, ``max_clips=`` (``task.*``).

Any other ``key=value`` is a Hydra override as for ``neuroclips.train`` (``scale=paper``, ``subj=2``,
``trainer=gpu``, ``task.nway.sampler=exact`` ...). Examples::

    python -m neuroclips.evaluate source=runs/default/subj1/outputs gt=data/cc2017.h5 scale=paper trainer=gpu
    python -m neuroclips.evaluate source=~/mindvideo/sub1 layout=side_by_side index_base=1 out=results/mindvideo1
"""

from __future__ import annotations

import os
import sys

SHORT_KEYS = {
    "source": "task.source", "gt": "data.file", "out": "paths.run_dir", "layout": "task.layout",
    "kinds": "task.kinds", "index_base": "task.index_base", "frame_indices": "task.frame_indices",
    "eval_size": "task.eval_size", "max_clips": "task.max_clips",
}


def translate(argv: list[str]) -> list[str]:
    """Map the short keys onto config keys and make sure the stage is eval."""
    out = []
    for a in argv:
        key, sep, value = a.partition("=")
        if sep and key in SHORT_KEYS:
            if key in ("source", "gt", "out"):
                value = os.path.abspath(os.path.expanduser(value))
            a = f"{SHORT_KEYS[key]}={value}"
        elif sep and key == "stage" and value != "eval":
            raise SystemExit(f"evaluate: this command runs stage=eval, found stage={value}.")
        out.append(a)
    if not any(a.startswith("stage=") for a in out):
        out.insert(0, "stage=eval")
    return out


def main(argv: list[str] | None = None) -> None:
    args = translate(sys.argv[1:] if argv is None else argv)
    if not any(a.startswith("task.source=") for a in args):
        print("evaluate: no source=DIR given; scoring this run's outputs store (paths.outputs_dir).", file=sys.stderr)
    sys.argv = [sys.argv[0], *args]
    from neuroclips.train import main as train_main

    train_main()


if __name__ == "__main__":
    main()
