"""Evaluate any folder of reconstructions: ``python -m neuroclips.evaluate source=DIR gt=FILE.h5 [out=DIR] ...``.

A thin front door to ``stage=eval`` (same config, same runtime). Short keys:

* ``source=DIR``   reconstructions (``task.source``): our outputs store or a foreign folder (readers.py layouts);
* ``gt=FILE``      the HDF5 file with the ground truth (``data.file``); required, except for ``layout=side_by_side``;
* ``out=DIR``      where metrics.json / metrics.md / report.html go (``paths.run_dir``);
* ``layout=``, ``kinds=``, ``index_base=``, ``frame_indices=``, ``eval_size=``, ``max_clips=`` (``task.*``).

Paired comparison of two systems on the same clips (mean difference, paired bootstrap 95 % interval, sign-flip
permutation p-value per metric; ``comparison.md``/``comparison.json`` and a section of the report in ``out``)::

    python -m neuroclips.evaluate compare a=runs/default/subj1/outputs b=runs/other/subj1/outputs gt=data/cc2017.h5

Any other ``key=value`` is a Hydra override as for ``neuroclips.train`` (``scale=paper``, ``subj=2``,
``trainer=gpu``, ``task.nway.sampler=exact`` ...). Examples::

    python -m neuroclips.evaluate source=runs/default/subj1/outputs gt=data/cc2017.h5 scale=paper trainer=gpu
    python -m neuroclips.evaluate source=~/mindvideo/sub1 layout=side_by_side index_base=1 out=results/mindvideo1
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from neuroclips.utils.environment import apply_environment_defaults  # noqa: E402

apply_environment_defaults()  # before the heavy imports read them

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

import neuroclips.utils.resolvers  # noqa: E402,F401  (registers the config's resolvers, as neuroclips.train does)
from neuroclips.utils.cli import quote_numeric_group_overrides  # noqa: E402

# absolute: Hydra resolves a relative config_path against the *calling* module, which differs under `-m`
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")

SHORT_KEYS = {
    "source": "task.source",
    "compare_with": "task.compare_with",
    "gt": "data.file",
    "out": "paths.run_dir",
    "layout": "task.layout",
    "kinds": "task.kinds",
    "index_base": "task.index_base",
    "frame_indices": "task.frame_indices",
    "eval_size": "task.eval_size",
    "max_clips": "task.max_clips",
}


def translate(argv: list[str]) -> list[str]:
    """Map the short keys onto config keys and make sure the stage is eval; ``compare a= b=`` -> source + compare_with."""
    out = []
    if argv and argv[0] == "compare":
        keys = {a.partition("=")[0] for a in argv[1:]}
        if not {"a", "b"} <= keys:
            raise SystemExit(
                "evaluate compare: expected a=DIR b=DIR (two folders of reconstructions of the same clips) "
                f"and gt=FILE.h5, found {' '.join(argv[1:]) or 'nothing'}."
            )
        argv = [
            ("source=" + a[2:])
            if a.startswith("a=")
            else ("compare_with=" + a[2:])
            if a.startswith("b=")
            else a
            for a in argv[1:]
        ]
    for a in argv:
        key, sep, value = a.partition("=")
        if sep and key in SHORT_KEYS:
            if key in ("source", "gt", "out", "compare_with"):
                value = os.path.abspath(os.path.expanduser(value))
            a = f"{SHORT_KEYS[key]}={value}"
        elif sep and key == "stage" and value != "eval":
            raise SystemExit(f"evaluate: this command runs stage=eval, found stage={value}.")
        out.append(a)
    if not any(a.startswith("stage=") for a in out):
        out.insert(0, "stage=eval")
    return out


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _run(cfg: DictConfig) -> dict | None:
    from neuroclips.errors import run_reporting_user_errors
    from neuroclips.runtime import run

    return run_reporting_user_errors(run, cfg)


def main(argv: list[str] | None = None) -> None:
    # `subj=1` -> `subj='1'`, as neuroclips.train does
    args = quote_numeric_group_overrides(translate(sys.argv[1:] if argv is None else argv))
    side_by_side = any(a.replace("'", "").replace('"', "") == "task.layout=side_by_side" for a in args)
    if not side_by_side and not any(
        a.startswith(("data.file=", "+data.file=", "++data.file=")) for a in args
    ):
        print(
            "neuroclips: error: evaluate: no ground truth given (config key 'data.file'); expected gt=FILE.h5, the "
            "HDF5 data file of the reconstructed clips, or layout=side_by_side for GIFs that hold the ground truth.",
            file=sys.stderr,
        )
        sys.exit(2)
    if not any(a.startswith("task.source=") for a in args):
        print(
            "evaluate: no source=DIR given; scoring this run's outputs store (paths.outputs_dir).",
            file=sys.stderr,
        )
    sys.argv = [sys.argv[0], *args]
    _run()


if __name__ == "__main__":
    main()
