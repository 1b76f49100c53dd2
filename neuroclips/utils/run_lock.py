"""One run at a time per run directory: ``run_dir/.lock``, created atomically, taken over when its holder is gone.

The lock file holds JSON ``{pid, host, started, argv, token, boot_id, pid_start}``. ``acquire_run_lock`` either
creates it, or finds it held and then:

* the holder is this process's own launch (its token is in ``NEUROCLIPS_RUN_LOCK_TOKEN``, which the holder sets and
  its child processes inherit, e.g. Lightning's DDP ranks or stage subprocesses): succeeds without owning it;
* the holder is on this host and gone (``os.kill(pid, 0)`` raises ProcessLookupError, the host rebooted since, or
  the pid now belongs to another process): takes it over and logs a line (this covers SIGKILL);
* otherwise (alive, or on another host, where it cannot be checked): raises ``StageError``.

Processes launched as DDP ranks > 0 (env ``RANK`` or ``LOCAL_RANK`` > 0, e.g. torchrun siblings, or
``SLURM_PROCID`` > 0 in an srun step of several tasks) skip locking: their rank 0 holds the lock of the launch.
A lock of an earlier run of this same SLURM job (requeued: same ``SLURM_JOB_ID``, lower ``SLURM_RESTART_COUNT``)
is taken over on any host.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import secrets
import socket
import sys
import time
from pathlib import Path

from neuroclips.errors import StageError

log = logging.getLogger("neuroclips")

LOCK_NAME = ".lock"
TOKEN_ENV = "NEUROCLIPS_RUN_LOCK_TOKEN"  # comma-separated tokens of the locks held by this launch
_UNREADABLE_GRACE_S = 30.0  # an unparseable lock younger than this is being written; older: its writer died


class RunLock:
    """A held (``owned``) or shared (``owned=False``: held by this launch's parent or rank 0) run-directory lock."""

    def __init__(self, path: Path, token: str | None, owned: bool, info: dict | None = None):
        self.path = path
        self.token = token
        self.owned = owned
        self.info = info or {}

    def release(self) -> None:
        """Remove the lock file if it is still ours (never one that another run took over meanwhile)."""
        if not self.owned:
            return
        self.owned = False
        _drop_env_token(self.token)
        held = _read(self.path)
        if held is None or held.get("token") != self.token:
            log.warning(
                "%s: not removing the run lock: it is no longer ours (now %s)",
                self.path,
                _describe(held) if held else "gone",
            )
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"RunLock({str(self.path)!r}, owned={self.owned})"


def launch_rank() -> int:
    """The process's rank in its launch: ``RANK`` or ``LOCAL_RANK`` (torchrun, Lightning's DDP children), or
    ``SLURM_PROCID`` in an srun step of several tasks (Lightning reads ranks from it); 0 when none is set."""
    names = ["RANK", "LOCAL_RANK"]
    if _int_env("SLURM_STEP_NUM_TASKS", _int_env("SLURM_NTASKS", 1)) > 1:
        names.append("SLURM_PROCID")
    return max((_int_env(n, 0) for n in names), default=0)


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else default


def _slurm() -> dict | None:
    """This SLURM job's id and restart count (a requeued job keeps its id and counts up), or None outside SLURM."""
    job = os.environ.get("SLURM_JOB_ID")
    return {"job": job, "restart": _int_env("SLURM_RESTART_COUNT", 0)} if job else None


def acquire_run_lock(run_dir: str | Path, argv: list[str] | None = None) -> RunLock:
    """Take ``run_dir/.lock`` for this run, or raise ``StageError`` naming the run that holds it (see module doc)."""
    run_dir = Path(run_dir)
    path = run_dir / LOCK_NAME
    if launch_rank() > 0:
        return RunLock(path, None, owned=False)
    run_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "argv": list(sys.argv if argv is None else argv),
        "token": token,
        "boot_id": _boot_id(),
        "pid_start": _pid_start(os.getpid()),
        "slurm": _slurm(),
    }
    for _attempt in range(20):
        if _create(path, info):
            _add_env_token(token)
            return RunLock(path, token, owned=True, info=info)
        held = _read(path, wait_s=1.0)
        if held is None:
            if not path.exists():
                continue  # released meanwhile
            age = time.time() - path.stat().st_mtime
            if age < _UNREADABLE_GRACE_S:
                raise StageError(
                    f"{run_dir}: another run is creating the lock of this run directory ({path} is "
                    f"not readable yet); wait for it to finish, or choose another name=... ."
                )
            reason = f"its content is unreadable and it is {age:.0f} s old"
        else:
            if held.get("token") and held["token"] in _env_tokens():
                return RunLock(path, held["token"], owned=False, info=held)
            reason = _stale_reason(held)
            if reason is None:
                raise StageError(_held_message(run_dir, held))
        if _take_over(path, held):
            log.warning(
                "%s: took over a stale run lock (%s; %s)",
                path,
                _describe(held) if held else "unreadable",
                reason,
            )
        # loop: create our own now (or find the run that was faster)
    raise StageError(
        f"{run_dir}: could not take the lock of this run directory ({path} keeps changing); "
        f"another run may be starting there, so wait for it, or choose another name=... ."
    )


# ------------------------------------------------------------------------------------------------ helpers
def _create(path: Path, info: dict) -> bool:
    """Create ``path`` holding ``info`` only if it does not exist; the content appears complete (link of a
    written temp file), or, where hard links are not supported, is written right after an O_EXCL create."""
    data = (json.dumps(info, indent=1) + "\n").encode()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.new")
    try:
        _write_new(tmp, data)
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links on this file system
            pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    try:
        _write_new(path, data)
    except FileExistsError:
        return False
    return True


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: Path, wait_s: float = 0.0) -> dict | None:
    """The lock's content, or None if it is missing or not (yet) valid JSON; retry for up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            held = json.loads(path.read_text())
            if isinstance(held, dict):
                return held
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            pass
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def _take_over(path: Path, held: dict | None) -> bool:
    """Remove the stale lock ``held``, but never a lock that another process created after we read it: move it
    aside atomically, check it is the one we judged stale, and put it back otherwise."""
    aside = path.with_name(f"{path.name}.stale.{secrets.token_hex(4)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    moved = _read(aside)
    if (held is None and moved is None) or (
        held is not None and moved is not None and moved.get("token") == held.get("token")
    ):
        aside.unlink()
        return True
    try:  # not the one we judged: someone took it over between our read and the rename; give it back
        os.link(aside, path)
    except FileExistsError:
        pass
    except OSError:
        if not path.exists():
            os.rename(aside, path)
    with contextlib.suppress(FileNotFoundError):
        aside.unlink()
    return False


def _stale_reason(held: dict) -> str | None:
    """Why the holder is gone, or None if it may be alive (or cannot be checked: another host)."""
    ours, theirs = _slurm(), held.get("slurm")
    if (
        ours
        and isinstance(theirs, dict)
        and theirs.get("job") == ours["job"]
        and _int(theirs.get("restart")) < ours["restart"]
    ):
        return f"it was taken by SLURM job {ours['job']} before it was requeued"  # on any host: the job runs once
    if held.get("host") != socket.gethostname():
        return None
    try:
        pid = int(held["pid"])
    except (KeyError, TypeError, ValueError):
        return "it names no pid"
    boot = _boot_id()
    if held.get("boot_id") and boot and held["boot_id"] != boot:
        return "the host has rebooted since"
    if pid == os.getpid():
        return "it was taken by an earlier process with this process's pid"  # we hold no lock under another token
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"pid {pid} is not running"
    except PermissionError:
        pass  # alive, another user's
    start = _pid_start(pid)
    if held.get("pid_start") is not None and start is not None and start != held["pid_start"]:
        return f"pid {pid} now belongs to another process"
    return None


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _held_message(run_dir: Path, held: dict) -> str:
    where = f"pid {held.get('pid', '?')} on host {held.get('host', '?')}, since {held.get('started', '?')}"
    if held.get("host") != socket.gethostname():
        return (
            f"{run_dir}: another run holds this run directory ({where}; a lock taken on another host is never "
            f"taken over, since that process cannot be checked from here); wait for it to finish, or choose "
            f"another name=..., or delete {run_dir / LOCK_NAME} if no run is active on {held.get('host', '?')}."
        )
    return (
        f"{run_dir}: another run holds this run directory ({where}); wait for it to finish, or choose another "
        f"name=... ."
    )


def _describe(held: dict) -> str:
    return f"pid {held.get('pid', '?')} on host {held.get('host', '?')}, since {held.get('started', '?')}"


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _pid_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid from its holder."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[19])  # field 22; the name in (...) may hold spaces
    except (OSError, ValueError, IndexError):
        return None


def _env_tokens() -> list[str]:
    return [t for t in os.environ.get(TOKEN_ENV, "").split(",") if t]


def _add_env_token(token: str) -> None:
    os.environ[TOKEN_ENV] = ",".join([*_env_tokens(), token])


def _drop_env_token(token: str | None) -> None:
    rest = [t for t in _env_tokens() if t != token]
    if rest:
        os.environ[TOKEN_ENV] = ",".join(rest)
    else:
        os.environ.pop(TOKEN_ENV, None)
