"""Compare two dump_configs.py folders key by key, after mapping moved keys to their new names: every other
difference is printed (a refactor that only moves keys prints none).

    python experiments/refactor_check/compare_configs.py CFG_BEFORE CFG_AFTER

MOVES, VALUE_RENAMES, FUSION_KEYS and NEW_BLOCKS hold the recipe move's map (conf/train, conf/callbacks, the fusion
block passed whole) and the stand-in recipes' move (scale.pr.standin / scale.standins -> train.standins); edit them
for another change.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MOVES = {  # old dotted-key prefix -> new
    "scale.sr.train.": "train.sr.",
    "scale.sr.prior_train.": "train.sr_prior.",
    "scale.sr.tau.": "train.sr.tau.",
    "scale.pr.batch_size": "train.pr.batch_size",
    "scale.pr.max_epochs": "train.pr.max_epochs",
    "scale.pr.max_lr": "train.pr.max_lr",
    # the stand-in fits' recipes (stage=standins) left scale too; scale keeps enabled, the folders and the sizes
    **{
        f"scale.pr.standin.{k}": f"train.standins.vae.{k}"
        for k in ("steps", "batch_size", "crop_size", "lr", "kl_weight")
    },
    **{
        f"scale.standins.{fit}.{k}": f"train.standins.{fit}.{k}"
        for fit in ("classifiers", "captioner")
        for k in ("steps", "batch_size", "lr")
    },
}
VALUE_RENAMES = {  # string values that name a moved key (datamodule.batch_size_field)
    "scale.sr.train.batch_size": "train.sr.batch_size",
    "scale.sr.prior_train.batch_size": "train.sr_prior.batch_size",
    "scale.pr.batch_size": "train.pr.batch_size",
}
FUSION_KEYS = ("decision", "threshold", "mlp_label", "mlp_hidden", "mlp_epochs", "max_clips", "limit_clips")
NEW_BLOCKS = {"callbacks": "fit"}  # new top-level blocks, and the stage mode that must have them (only it)


def flatten(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        out: dict = {}
        for k, v in tree.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: tree}


def moved(key: str, stage: str) -> str:
    for old, new in MOVES.items():
        if key.startswith(old):
            return new + key[len(old) :]
    if stage == "fusion" and key in {f"task.{k}" for k in FUSION_KEYS}:
        return "task.fusion." + key[len("task.") :]
    return key


def differences(before: dict, after: dict) -> list[str]:
    stage = before["stage"]
    old = {
        moved(k, stage["name"]): VALUE_RENAMES.get(v, v) if isinstance(v, str) else v
        for k, v in flatten(before).items()
    }
    new = flatten(after)
    problems = []
    for block, mode in NEW_BLOCKS.items():
        has = any(k.startswith(f"{block}.") for k in new)
        if has != (stage["mode"] == mode):
            problems.append(f"{block} block {'in' if has else 'missing from'} a {stage['mode']} stage")
        if not any(
            k.startswith(f"{block}.") for k in old
        ):  # new here: not compared (a before that had it is)
            new = {k: v for k, v in new.items() if not k.startswith(f"{block}.")}
    problems += [f"only before: {k}" for k in sorted(set(old) - set(new))]
    problems += [f"only after: {k}" for k in sorted(set(new) - set(old))]
    problems += [f"{k}: {old[k]!r} -> {new[k]!r}" for k in sorted(set(old) & set(new)) if old[k] != new[k]]
    return problems


def main() -> None:
    before, after = Path(sys.argv[1]), Path(sys.argv[2])
    files = sorted(before.glob("*.json"))
    bad = 0
    for a in files:
        b = after / a.name
        problems = (
            ["missing"]
            if not b.exists()
            else differences(json.loads(a.read_text()), json.loads(b.read_text()))
        )
        if problems:
            bad += 1
            print(f"{a.name}: {'; '.join(problems[:6])}")
    print(f"compared {len(files)} configs, {bad} differ beyond the moves")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
