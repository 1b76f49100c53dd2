"""The record a fitted stand-in folder carries (``standin.json``): what it was fitted to, so stage=standins reuses it
only while the data and settings are the same."""

from __future__ import annotations

import json
from pathlib import Path

MARKER = "standin.json"


def write_marker(folder: Path, record: dict) -> None:
    (folder / MARKER).write_text(json.dumps(record, indent=2))


def marker_matches(folder: Path, expected: dict) -> bool:
    """The folder holds a record whose entries equal every entry of ``expected``."""
    marker = folder / MARKER
    if not marker.exists():
        return False
    recorded = read_marker(folder)
    return all(recorded.get(key) == value for key, value in expected.items())


def read_marker(folder: Path) -> dict:
    """The record of a fitted stand-in folder (what `write_marker` wrote)."""
    return json.loads((Path(folder) / MARKER).read_text())
