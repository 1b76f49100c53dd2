"""Compare two reduced-demo run folders bit for bit: every checkpoint state dict, every outputs .npy, every caption.

python experiments/refactor_check/compare_runs.py OUT_BEFORE/runs OUT_AFTER/runs
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch


def differs(a: Path, b: Path) -> str | None:
    """Why file ``b`` differs from ``a`` (None when equal, or when the file is not compared)."""
    if not b.exists():
        return "missing"
    if a.suffix == ".ckpt":
        sa, sb = (torch.load(p, map_location="cpu", weights_only=True)["state_dict"] for p in (a, b))
        keys = [k for k in sa if k not in sb or not torch.equal(sa[k], sb[k])]
        return f"state dict differs at {keys[:5]}" if keys or sa.keys() != sb.keys() else None
    if a.suffix == ".npy":
        x, y = np.load(a), np.load(b)
        return None if x.shape == y.shape and np.array_equal(x, y) else "array differs"
    if a.suffix == ".json" and "caption" in a.parts:
        same = json.loads(a.read_text()).get("caption") == json.loads(b.read_text()).get("caption")
        return None if same else "caption differs"
    return None


def main() -> None:
    before, after = Path(sys.argv[1]), Path(sys.argv[2])
    compared = bad = 0
    for a in sorted(p for p in before.rglob("*") if p.is_file()):
        if a.suffix not in (".ckpt", ".npy") and not (a.suffix == ".json" and "caption" in a.parts):
            continue
        compared += 1
        why = differs(a, after / a.relative_to(before))
        if why:
            bad += 1
            print(f"{a.relative_to(before)}: {why}")
    print(f"compared {compared} files, {bad} differ")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
