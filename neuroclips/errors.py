"""The errors a user can cause (bad data, missing weights, wrong checkpoint, bad config): one sentence, exit 2."""

from __future__ import annotations

from omegaconf.errors import MissingMandatoryValue

from neuroclips.checkpoints import CheckpointMismatchError
from neuroclips.data.schema import SchemaError
from neuroclips.utils.weights import MissingWeightsError


class ConfigError(ValueError):
    """A configuration value is missing or of the wrong kind."""


class StageError(RuntimeError):
    """A stage cannot run as configured."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    SchemaError, MissingWeightsError, CheckpointMismatchError, ConfigError, StageError, MissingMandatoryValue,
)


def format_user_error(e: BaseException) -> str:
    return f"neuroclips: error: {e}"
