"""The errors a user can cause (bad data, missing weights, wrong checkpoint, bad config): one sentence, exit 2."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable
from typing import TypeVar

from omegaconf.errors import InterpolationKeyError, MissingMandatoryValue

T = TypeVar("T")


class UserError(Exception):
    """Base of every error a user can cause and fix (bad data file, missing weights, wrong checkpoint, bad config):
    the entry points print its one-sentence message and exit with 2. The modules that detect such faults subclass
    it (`data.schema.SchemaError`, `utils.weights.MissingWeightsError`, `checkpoints.CheckpointMismatchError`,
    `evaluation.readers.ReconstructionError`), so this module imports nothing of ours."""


class ConfigError(UserError, ValueError):
    """A configuration value is missing or of the wrong kind."""


class StageError(UserError, RuntimeError):
    """A stage cannot run as configured."""


USER_ERRORS: tuple[type[BaseException], ...] = (UserError, MissingMandatoryValue, InterpolationKeyError)


DISK_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
}


def format_user_error(e: BaseException) -> str:
    if isinstance(e, OSError) and e.errno in DISK_ERRNOS:
        return (
            f"neuroclips: error: {e.filename or 'a file of this run'}: cannot be written ({DISK_ERRNOS[e.errno]}); "
            f"free space or point paths.runs_dir (NEUROCLIPS_RUNS_DIR) at another disk, then rerun: writes are "
            f"atomic, so no partial file was left."
        )
    if isinstance(e, InterpolationKeyError):  # e.g. stage.selection=foo: a value that names no option
        first = str(e).splitlines()[0]
        return f"neuroclips: error: config key '{e.full_key}': {first}; check the value given for it or for the key it names."
    return f"neuroclips: error: {e}"


def user_error_in_chain(e: BaseException | None) -> BaseException | None:
    """The user error behind ``e`` (Hydra wraps errors raised while instantiating), or None."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, USER_ERRORS) or (isinstance(e, OSError) and e.errno in DISK_ERRNOS):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def run_reporting_user_errors(fn: Callable[..., T], *args) -> T:
    """``fn(*args)``, as the entry points run a stage: a user error anywhere in the exception chain (Hydra wraps
    errors raised while instantiating) is printed as its one sentence and exits with 2; any other error keeps its
    traceback."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - only user errors are reported briefly
        user = user_error_in_chain(e)
        if user is None:
            raise
        print(format_user_error(user), file=sys.stderr)
        sys.exit(2)
