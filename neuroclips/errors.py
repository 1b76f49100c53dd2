"""The errors a user can cause (bad data, missing weights, wrong checkpoint, bad config): one sentence, exit 2."""

from __future__ import annotations

import errno

from omegaconf.errors import InterpolationKeyError, MissingMandatoryValue

from neuroclips.checkpoints import CheckpointMismatchError
from neuroclips.data.schema import SchemaError
from neuroclips.utils.weights import MissingWeightsError


class ConfigError(ValueError):
    """A configuration value is missing or of the wrong kind."""


class StageError(RuntimeError):
    """A stage cannot run as configured."""


def _reader_error() -> type[BaseException]:
    from neuroclips.evaluation.readers import ReconstructionError

    return ReconstructionError


USER_ERRORS: tuple[type[BaseException], ...] = (
    SchemaError, MissingWeightsError, CheckpointMismatchError, ConfigError, StageError, MissingMandatoryValue,
    InterpolationKeyError,
    _reader_error(),
)


DISK_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
               errno.EROFS: "read-only file system"}


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
