"""The run-directory lock: refused while held by a live run, taken over from a dead one, shared with children."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from neuroclips.errors import StageError
from neuroclips.utils import run_lock
from neuroclips.utils.run_lock import LOCK_NAME, TOKEN_ENV, acquire_run_lock

REPO = Path(__file__).resolve().parents[1]
HOST = socket.gethostname()

# A process that takes the lock, says so, and holds it until told to stop (a line on stdin), or until killed.
HOLDER = textwrap.dedent("""
    import sys
    from neuroclips.utils.run_lock import acquire_run_lock
    lock = acquire_run_lock(sys.argv[1])
    print("HELD", lock.owned, flush=True)
    sys.stdin.readline()
    lock.release()
    print("RELEASED", flush=True)
""")

# A process that tries to take the lock once: exit 0 (prints owned), or exit 2 with the StageError on stderr.
TRY = textwrap.dedent("""
    import os, sys, time
    from neuroclips.errors import StageError
    from neuroclips.utils.run_lock import acquire_run_lock
    if len(sys.argv) > 3:  # a start barrier, so that contenders really race
        open(f"{sys.argv[3]}.ready.{os.getpid()}", "w").close()
        while not os.path.exists(sys.argv[3]):
            time.sleep(0.01)
    try:
        lock = acquire_run_lock(sys.argv[1])
    except StageError as e:
        print(e, file=sys.stderr)
        sys.exit(2)
    print("OWNED" if lock.owned else "SHARED", flush=True)
    time.sleep(float(sys.argv[2]))
    lock.release()
""")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in [TOKEN_ENV, "RANK", "LOCAL_RANK", *(v for v in os.environ if v.startswith("SLURM_"))]:
        monkeypatch.delenv(var, raising=False)


def _env(**extra) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (TOKEN_ENV, "RANK", "LOCAL_RANK") and not k.startswith("SLURM_")
    }
    return {**env, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **extra}


def _start_holder(run_dir: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_dir)],
        cwd=REPO,
        env=_env(),
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    line = proc.stdout.readline()
    assert line.strip() == "HELD True", (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc


def _try(
    run_dir: Path,
    hold_s: float = 0.0,
    barrier: Path | None = None,
    env: dict | None = None,
    wait: bool = True,
):
    args = [sys.executable, "-c", TRY, str(run_dir), str(hold_s)] + ([str(barrier)] if barrier else [])
    if not wait:
        return subprocess.Popen(
            args, cwd=REPO, env=env or _env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    return subprocess.run(args, cwd=REPO, env=env or _env(), text=True, capture_output=True, timeout=120)


def _lock(run_dir: Path) -> dict:
    return json.loads((run_dir / LOCK_NAME).read_text())


def test_second_process_refused_first_unharmed(tmp_path):
    run_dir = tmp_path / "runs" / "demo" / "subj1" / "sr"
    holder = _start_holder(run_dir)
    try:
        before = _lock(run_dir)
        assert before["pid"] == holder.pid and before["host"] == HOST and before["argv"][1:] == [str(run_dir)]
        second = _try(run_dir)
        assert second.returncode == 2, second
        msg = second.stderr.strip()
        assert msg.startswith(
            f"{run_dir}: another run holds this run directory (pid {holder.pid} on host {HOST}, "
            f"since {before['started']}); wait for it to finish, or choose another name="
        ), msg
        assert msg.count("\n") == 0
        assert holder.poll() is None and _lock(run_dir) == before  # the first run is unharmed
        with pytest.raises(StageError, match=f"pid {holder.pid} on host"):
            acquire_run_lock(run_dir)
        assert _lock(run_dir) == before
        out, _ = holder.communicate("stop\n", timeout=60)
        assert "RELEASED" in out and holder.returncode == 0
        assert not (run_dir / LOCK_NAME).exists()
    finally:
        if holder.poll() is None:
            holder.kill()
    with acquire_run_lock(run_dir) as lock:  # free again
        assert lock.owned
    assert not (run_dir / LOCK_NAME).exists()


def test_lock_of_sigkilled_process_taken_over(tmp_path, caplog):
    run_dir = tmp_path / "run"
    holder = _start_holder(run_dir)
    dead = _lock(run_dir)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    holder.stdout.close(), holder.stdin.close(), holder.stderr.close()
    assert (run_dir / LOCK_NAME).exists()  # SIGKILL leaves it behind
    with caplog.at_level(logging.WARNING, logger="neuroclips"):
        lock = acquire_run_lock(run_dir)
    assert lock.owned and _lock(run_dir)["pid"] == os.getpid() and _lock(run_dir)["token"] != dead["token"]
    assert any(
        "took over a stale run lock" in r.message and f"pid {dead['pid']} is not running" in r.message
        for r in caplog.records
    ), caplog.text
    lock.release()
    assert not (run_dir / LOCK_NAME).exists()


def test_stale_lock_of_dead_pid_taken_over(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(proc.stdout)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / LOCK_NAME).write_text(
        json.dumps(
            {
                "pid": dead_pid,
                "host": HOST,
                "started": "2026-01-01T00:00:00",
                "argv": ["x"],
                "token": "deadbeef",
            }
        )
    )
    with acquire_run_lock(run_dir) as lock:
        assert lock.owned and _lock(run_dir)["token"] == lock.token
    assert not (run_dir / LOCK_NAME).exists()


def test_concurrent_takeovers_one_winner(tmp_path):
    """Four processes find the same stale lock at once: exactly one gets it, the others name the winner."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / LOCK_NAME).write_text(
        json.dumps({"pid": 2**22 + 12345, "host": HOST, "started": "then", "argv": [], "token": "stale"})
    )
    barrier = tmp_path / "go"
    procs = [_try(run_dir, hold_s=5.0, barrier=barrier, wait=False) for _ in range(4)]
    deadline = time.monotonic() + 120
    while (
        len(list(tmp_path.glob("go.ready.*"))) < 4 and time.monotonic() < deadline
    ):  # all imported and waiting
        time.sleep(0.05)
    barrier.touch()
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    winners = [r for r in results if r[0] == 0]
    assert len(winners) == 1 and winners[0][1].strip() == "OWNED", results
    winner_pid = procs[results.index(winners[0])].pid
    for rc, _out, err in results:
        if rc != 0:
            assert rc == 2 and f"(pid {winner_pid} on host {HOST}" in err, (rc, err)
    assert not (run_dir / LOCK_NAME).exists()


def test_same_token_child_accepted(tmp_path):
    run_dir = tmp_path / "run"
    with acquire_run_lock(run_dir) as lock:
        assert os.environ[TOKEN_ENV] == lock.token
        held = _lock(run_dir)
        child = _try(
            run_dir, env=_env(**{TOKEN_ENV: os.environ[TOKEN_ENV]})
        )  # as Lightning's DDP children inherit it
        assert child.returncode == 0 and child.stdout.strip() == "SHARED", child
        assert _lock(run_dir) == held  # the child's release did not remove the parent's lock
        stranger = _try(run_dir)  # without the token: refused
        assert stranger.returncode == 2 and f"pid {os.getpid()} on host {HOST}" in stranger.stderr
        other_token = _try(run_dir, env=_env(**{TOKEN_ENV: "0123abcd"}))
        assert other_token.returncode == 2
    assert TOKEN_ENV not in os.environ and not (run_dir / LOCK_NAME).exists()


def test_ranks_above_zero_skip_the_lock(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    holder = _start_holder(run_dir)  # a different launch holds it
    try:
        for var, value in (("LOCAL_RANK", "1"), ("RANK", "3")):
            monkeypatch.setenv(var, value)
            lock = acquire_run_lock(run_dir)
            assert not lock.owned
            lock.release()
            monkeypatch.delenv(var)
        assert _lock(run_dir)["pid"] == holder.pid
        monkeypatch.setenv("LOCAL_RANK", "0")
        with pytest.raises(StageError):
            acquire_run_lock(run_dir)
    finally:
        holder.communicate("stop\n", timeout=60)


def test_release_after_takeover_keeps_their_lock(tmp_path, caplog):
    run_dir = tmp_path / "run"
    lock = acquire_run_lock(run_dir)
    theirs = {"pid": 1, "host": HOST, "started": "later", "argv": ["them"], "token": "theirs"}
    (run_dir / LOCK_NAME).write_text(json.dumps(theirs))  # someone judged us stale and took over
    with caplog.at_level(logging.WARNING, logger="neuroclips"):
        lock.release()
    assert _lock(run_dir) == theirs
    assert "no longer ours" in caplog.text
    lock.release()  # idempotent
    assert _lock(run_dir) == theirs and TOKEN_ENV not in os.environ


def test_other_host_never_taken_over(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / LOCK_NAME).write_text(
        json.dumps(
            {
                "pid": 2**22 + 1,
                "host": "gpu-node-17",
                "started": "2026-05-01T10:00:00+00:00",
                "argv": [],
                "token": "remote",
            }
        )
    )
    with pytest.raises(StageError) as err:
        acquire_run_lock(run_dir)
    msg = str(err.value)
    assert (
        "(pid 4194305 on host gpu-node-17, since 2026-05-01T10:00:00+00:00; a lock taken on another host is never taken over"
        in msg
    )
    assert f"delete {run_dir / LOCK_NAME} if no run is active on gpu-node-17." in msg
    assert _lock(run_dir)["token"] == "remote"


def test_reused_pid_and_own_pid_are_stale(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = run_lock._pid_start(sleeper.pid)
        assert start is not None
        base = {"host": HOST, "started": "then", "argv": [], "boot_id": run_lock._boot_id()}
        (run_dir / LOCK_NAME).write_text(
            json.dumps({**base, "pid": sleeper.pid, "pid_start": start, "token": "a"})
        )
        with pytest.raises(StageError):  # that very process: alive
            acquire_run_lock(run_dir)
        (run_dir / LOCK_NAME).write_text(
            json.dumps({**base, "pid": sleeper.pid, "pid_start": start - 1, "token": "b"})
        )
        acquire_run_lock(run_dir).release()  # same pid, another process: stale
        (run_dir / LOCK_NAME).write_text(json.dumps({**base, "pid": os.getpid(), "token": "c"}))
        acquire_run_lock(
            run_dir
        ).release()  # our pid but not our token: an earlier process (container restart)
        (run_dir / LOCK_NAME).write_text(
            json.dumps({**base, "pid": sleeper.pid, "boot_id": "other-boot", "token": "d"})
        )
        acquire_run_lock(run_dir).release()  # taken before a reboot
    finally:
        sleeper.kill()
        sleeper.wait()


def test_unreadable_lock(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / LOCK_NAME).write_text("")  # a writer between create and write
    with pytest.raises(StageError, match="another run is creating the lock"):
        acquire_run_lock(run_dir)
    old = time.time() - 3600
    os.utime(run_dir / LOCK_NAME, (old, old))  # its writer died long ago
    with acquire_run_lock(run_dir) as lock:
        assert lock.owned
    assert sorted(p.name for p in run_dir.iterdir()) == []  # no temp or aside files left


def test_slurm_siblings_skip_and_requeued_job_takes_over(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    remote = {
        "pid": 4242,
        "host": "gpu-node-03",
        "started": "then",
        "argv": [],
        "token": "remote",
        "slurm": {"job": "777", "restart": 0},
    }
    (run_dir / LOCK_NAME).write_text(json.dumps(remote))
    monkeypatch.setenv("SLURM_JOB_ID", "777")
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_PROCID", "5")  # an srun sibling: its task 0 holds the lock
    assert not acquire_run_lock(run_dir).owned
    monkeypatch.setenv("SLURM_PROCID", "0")
    with pytest.raises(
        StageError, match="on host gpu-node-03"
    ):  # same job, same incarnation, other host: refused
        acquire_run_lock(run_dir)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # the job was requeued (onto another node)
    with acquire_run_lock(run_dir) as lock:
        assert lock.owned and _lock(run_dir)["slurm"] == {"job": "777", "restart": 1}
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_PROCID", "3")  # a single-task step: SLURM_PROCID is not a DDP rank
    with acquire_run_lock(run_dir) as lock:
        assert lock.owned
