"""The generated blocks of the benchmark's Markdown files: a script rewrites only the lines between its markers
(``<!-- generated table: start <tag> -->`` ... ``end <tag>``), so the hand-written reading and the other blocks of
the same file stay across reruns (make_readme.py reads the blocks by the same markers)."""

from __future__ import annotations

from pathlib import Path


def write_block(path: Path, tag: str, lines: list[str]) -> None:
    """Replace the ``tag`` block of ``path`` with ``lines``; a file without that block gets it put first."""
    start, end = f"<!-- generated table: start {tag} -->", f"<!-- generated table: end {tag} -->"
    text = "\n".join([start, *lines, end])
    old = path.read_text() if path.exists() else ""
    if start in old and end in old:
        text = old[: old.index(start)] + text + old[old.index(end) + len(end) :]
    elif old:
        text = text + "\n\n" + old
    path.write_text(text + ("" if text.endswith("\n") else "\n"))
