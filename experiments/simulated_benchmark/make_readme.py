"""Assemble experiments/simulated_benchmark/README.md from the learning checks and the demo's metrics.

    python experiments/simulated_benchmark/make_readme.py [--demo-metrics runs/demo/subj1/eval/metrics.json]

The tables come from ``sr_results.md`` (sr_vs_ridge.py), ``pr_results.md`` (pr_vs_mean_frame.py) and the demo's
``eval/metrics.json``; ``make learning-check`` reruns all three and then this script.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent


def generated_block(path: Path) -> str:
    text = path.read_text() if path.exists() else f"_{path.name} not generated yet._\n"
    # every generated block, in file order (sr_results.md holds one per simulated data size, tagged)
    blocks = re.findall(
        r"<!-- generated table: start ?(\S*) -->(.*?)<!-- generated table: end ?\1 -->", text, re.S
    )
    return "\n\n".join(b.strip() for _, b in blocks) + "\n" if blocks else text.strip() + "\n"


def demo_table(path: Path) -> str:
    if not path.exists():
        return f"_No demo metrics at `{path}`: run `make demo` first._\n"
    m = json.loads(path.read_text())
    rows = ["| output | metric | value | ± std | clips |", "|---|---|---|---|---|"]
    for kind, block in m.get("kinds", {}).items():
        for name, v in block.get("metrics", {}).items():
            if isinstance(v, dict) and "value" in v:
                rows.append(
                    f"| {kind} | {name} | {v['value']:.3f} | {v.get('std', float('nan')):.3f} | {v.get('n', '')} |"
                )
    ret = m.get("retrieval")
    if isinstance(ret, dict):
        for name, v in ret.items():
            if isinstance(v, dict) and "value" in v:
                rows.append(
                    f"| keyframe tokens | retrieval {name} | {v['value']:.3f} | {v.get('std', float('nan')):.3f} | {v.get('n', '')} |"
                )
    head = (
        f"Demo (`make demo`, subject {m.get('subject')}, scale {m.get('scale')}, split {m.get('split')}); models: "
        + ", ".join(f"{k}: {v}" for k, v in m.get("models", {}).items())
        + ".\n\n"
    )
    return head + "\n".join(rows) + "\n"


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo-metrics", type=Path, default=Path("runs/demo/subj1/eval/metrics.json"))
    ap.add_argument("--out", type=Path, default=HERE / "README.md")
    args = ap.parse_args(argv)
    text = f"""# Learning checks on the simulated brain (scale=tiny)

Does each reconstructor learn something real on `neuroclips.data.simulate`'s data, measured against a baseline?
Regenerate everything here with one command: `make learning-check` (about an hour on a 2-core CPU).
The hand-written readings of each table are in `sr_results.md`, `pr_results.md`, `pr_vs_ridge.md`, `vae_kl_weight.md`, `generator_vae_crops.md`,
`nway_classifiers.md`, `unclip_standin.md` and `video_standin.md`.

## Semantic Reconstructor versus a closed-form ridge (validation top-1 retrieval)

{generated_block(HERE / "sr_results.md")}
## Perceptual Reconstructor versus the mean training frame (validation clips)

{generated_block(HERE / "pr_results.md")}
## The tiny PR against closed-form ridges on the same fMRI (validation and test clips)

{generated_block(HERE / "pr_vs_ridge.md")}
## The tiny VAEs by KL weight: how faithfully they round-trip the validation frames

{generated_block(HERE / "vae_kl_weight.md")}
## The generators' shared VAE by crop size: how faithfully it carries the blurry video (validation clips)

{generated_block(HERE / "generator_vae_crops.md")}
## The N-way classifier stand-ins: a constant picture at chance, colour read, shape hardly

{generated_block(HERE / "nway_classifiers.md")}
## Fitted tiny unCLIP versus the random one and the mean training frame (test clips, true tokens)

{generated_block(HERE / "unclip_standin.md")}
## Fitted tiny video generator with true inputs, and its ablations (test clips)

{generated_block(HERE / "video_standin.md")}
## End to end: the demo's final videos against the baselines and the method's ablations (test clips)

{generated_block(HERE / "end_to_end.md")}
## The same on the validation clips, where generation settings may be chosen

{generated_block(HERE / "end_to_end_val.md")}
## The demo's metrics

{demo_table(args.demo_metrics)}
In the demo the unCLIP image generator, the AnimateDiff + SparseCtrl video generator and the N-way classifiers are
tiny stand-ins fitted by `stage=standins` and `stage=generators` on the simulated training clips (`unclip_standin.md`, `video_standin.md`,
`nway_classifiers.md`); the blurry row reflects the trained Perceptual Reconstructor.
"""
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
