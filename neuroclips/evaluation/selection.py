"""How the fit stages of an experiment chose their checkpoints (the eval report's model-selection sentence).

Read from each fit stage's ``summary.json`` (or the ``config.yaml`` written at its start) in the experiment's run
root; ``val_split == "test"`` means its validation loader scored the test clips (``stage.selection=reference_test``).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

SELECTION_STAGES = (
    "sr",
    "sr_prior",
    "pr",
)  # fit stages whose checkpoint choice may have looked at the test set


def model_selection(run_root: Path) -> dict[str, dict]:
    """How each fit stage of this experiment chose its checkpoint, from its run's ``summary.json`` (or the
    ``config.yaml`` written at its start): ``{stage: {selection, val_split, monitor, monitor_mode, source}}``.
    ``val_split == "test"`` means its validation loader scored the test clips (``stage.selection=reference_test``)."""
    out: dict[str, dict] = {}
    for stage in SELECTION_STAGES:
        cfg, source = None, None
        for name in ("summary.json", "config.yaml"):
            p = Path(run_root) / stage / name
            if not p.exists():
                continue
            try:
                cfg = (
                    json.loads(p.read_text())["config"]
                    if name == "summary.json"
                    else yaml.safe_load(p.read_text())
                )
                source = str(p)
                break
            except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError):
                continue
        if not isinstance(cfg, dict):
            continue
        st, dm = cfg.get("stage") or {}, cfg.get("datamodule") or {}
        out[stage] = {
            "selection": st.get("selection", "validation"),
            "val_split": dm.get("val_split", "val"),
            "monitor": st.get("monitor"),
            "monitor_mode": st.get("monitor_mode"),
            "source": source,
        }
    return out
