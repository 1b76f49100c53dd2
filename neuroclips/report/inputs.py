"""The files a report reads beside the metrics doc it is given: the data file's source attribute and captions,
our outputs store's caption sidecars, and the other subjects' metrics.json of the same experiment."""

from __future__ import annotations

import json
from pathlib import Path


def on_simulated_data(doc: dict) -> bool:
    """True when the ground truth is a `neuroclips.data.simulate` file (its `source` attribute says so)."""
    try:
        import h5py

        with h5py.File(doc["data_file"], "r") as f:
            return str(f.attrs.get("source", "")) == "simulated"
    except (OSError, KeyError, TypeError):
        return False


def stored_captions(doc: dict, clips=None) -> dict[int, dict]:
    """Caption sidecars ({"text", "caption_source", ...}) of our outputs store (`<source>/caption/<clip>.json`)."""
    folder = Path(str(doc.get("source", ""))) / "caption"
    if not folder.is_dir():
        return {}
    out = {}
    for path in sorted(folder.glob("*.json")):
        if path.stem.isdigit() and (clips is None or int(path.stem) in clips):
            try:
                out[int(path.stem)] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
    return out


def first_sidecar(doc: dict, kind: str) -> dict:
    """The first clip's JSON sidecar of one kind in our outputs store (`<source>/<kind>/<clip>.json`), or {}."""
    folder = Path(str(doc.get("source", ""))) / kind
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if path.stem.isdigit():
            try:
                return json.loads(path.read_text())
            except (OSError, ValueError):
                continue
    return {}


def ground_truth_captions(doc: dict) -> dict[int, str]:
    """The data file's captions of the evaluated split, by clip index ({} when the file has none)."""
    try:
        import h5py

        with h5py.File(doc["data_file"], "r") as f:
            group = f[f"stimuli/{doc['split']}"]
            texts = [t.decode() if isinstance(t, bytes) else str(t) for t in group["captions"][:]]
            return dict(zip((int(c) for c in group["clip_index"][:]), texts))
    except (OSError, KeyError, TypeError):
        return {}


def sibling_subject_docs(run_dir: Path) -> list[dict]:
    """metrics.json of the same experiment's eval runs for every subject (``runs/<name>/subj*/<stage>``)."""
    docs = []
    for p in sorted(run_dir.parent.parent.glob(f"subj*/{run_dir.name}/metrics.json")):
        try:
            docs.append(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return docs
