"""remove_orphan_tmp deletes only what atomic_path leaves behind after a kill; format_bytes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from neuroclips.utils.atomic import atomic_path, format_bytes, is_atomic_tmp_name, remove_orphan_tmp


def _orphan(final: Path, payload: bytes) -> Path:
    """Leave a temp file exactly as a process killed inside ``atomic_path`` would."""
    with pytest.raises(KeyboardInterrupt), atomic_path(final) as tmp:
        tmp.write_bytes(payload)
        kept = tmp.with_name(tmp.name + ".keep")
        os.link(
            tmp, kept
        )  # atomic_path removes its temp file on the exception; keep a copy under the same name
        raise KeyboardInterrupt
    os.replace(kept, tmp)
    return tmp


def test_orphans_removed_everything_else_kept(tmp_path):
    root = tmp_path / "run"
    a = _orphan(root / "outputs" / "blurry" / "00001.npy", b"x" * 1000)
    b = _orphan(root / "checkpoints" / "last.ckpt", b"y" * 234)
    assert is_atomic_tmp_name(a.name) and is_atomic_tmp_name(b.name)
    with atomic_path(root / "outputs" / "blurry" / "00000.npy") as tmp:  # a completed write
        tmp.write_bytes(b"done")
    keep = [
        root / "outputs" / "blurry" / "00000.npy",
        root / "notes.tmp",
        root / ".lock",
        root / ".hidden.tmp",
        root / "outputs" / ".00002.npy.tmp",
        root / "x.abcdefgh.tmp",
    ]
    for p in keep[1:]:
        p.write_bytes(b"k")

    outside = tmp_path / "outside"
    outside.mkdir()
    target = _orphan(outside / "victim.npy", b"z" * 50)  # an orphan-named file outside root
    (root / "link_dir").symlink_to(outside, target_is_directory=True)  # a symlinked folder is not followed
    (root / target.name).symlink_to(target)  # a symlink with an orphan's name is neither followed nor removed

    assert remove_orphan_tmp(root) == (2, 1234)
    assert not a.exists() and not b.exists()
    for p in keep:
        assert p.exists(), p
    assert target.exists() and target.read_bytes() == b"z" * 50
    assert (root / target.name).is_symlink()
    assert remove_orphan_tmp(root) == (0, 0)


def test_recent_files_kept_with_margin(tmp_path):
    old = _orphan(tmp_path / "a.npy", b"1" * 10)
    new = _orphan(tmp_path / "sub" / "b.npy", b"2" * 20)
    past = time.time() - 3600
    os.utime(old, (past, past))
    assert remove_orphan_tmp(tmp_path, older_than_s=60) == (1, 10)
    assert not old.exists() and new.exists()
    assert remove_orphan_tmp(tmp_path) == (1, 20)


def test_missing_root_is_empty(tmp_path):
    assert remove_orphan_tmp(tmp_path / "nope") == (0, 0)


@pytest.mark.parametrize(
    "n,text",
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (312_400_000, "312.4 MB"),
        (999_960, "1.0 MB"),
        (2.5e9, "2.5 GB"),
        (7e12, "7.0 TB"),
    ],
)
def test_format_bytes(n, text):
    assert format_bytes(n) == text


def test_atomic_folder_replaces_the_folder_only_when_the_block_finishes(tmp_path):
    import pytest

    from neuroclips.utils.atomic import atomic_folder

    final = tmp_path / "model"
    final.mkdir()
    (final / "weights.bin").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(final) as tmp:
        tmp.mkdir()
        (tmp / "weights.bin").write_text("half")
        raise RuntimeError("killed mid-save")
    assert (final / "weights.bin").read_text() == "old"  # the interrupted save never reached the final name
    with atomic_folder(final) as tmp:
        assert not tmp.exists()  # the leftover of the interrupted save is removed first
        tmp.mkdir()
        (tmp / "weights.bin").write_text("new")
    assert (final / "weights.bin").read_text() == "new" and not tmp.exists()
