"""Checks every fitted stand-in (tasks/standin_*.py) must pass, shared by their test files."""

from __future__ import annotations


def assert_reused_only_for_same_data_and_settings(
    task, fingerprint: dict, section: str | None = None
) -> None:
    """``task`` was fitted under ``fingerprint``: its folder counts as current for that data and its own settings
    only, not for other data and not after a training setting changed (``task.training[section]["steps"]`` when
    the stand-in fits several nets)."""
    assert task.is_current(fingerprint)
    assert not task.is_current({**fingerprint, "frames_sha1": "other data"})
    training = task.training if section is None else task.training[section]
    training["steps"] += 1
    try:
        assert not task.is_current(fingerprint)
    finally:
        training["steps"] -= 1
