"""What a path on disk is, told without opening it: the check every reader of user-named files shares."""

from __future__ import annotations

import os
import stat
from pathlib import Path

_SPECIAL = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def special_kind(path: str | Path) -> str | None:
    """None for a regular file or a folder (links followed); else what ``path`` is. Never opens it (a FIFO blocks)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"a dangling symbolic link (to {os.readlink(path)})" if os.path.islink(path) else "missing"
    except OSError as e:
        return f"unreadable ({e.strerror})"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return next((what for test, what in _SPECIAL if test(mode)), "not a regular file")
